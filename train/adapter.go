package train

import (
	"fmt"
	"path/filepath"

	"fspo/ckpt"
	"fspo/model"
	"fspo/tensor"
)

// AdapterFile is the adapter a LoRA run writes beside its merged model.
const AdapterFile = "adapter.fspo"

// saveAdapter writes the trained adapter (model.LoRAFormat) with the run's card.
func (r *Run) saveAdapter(st *state) error {
	cp, err := st.adapter.Checkpoint(r.Model.Config)
	if err != nil {
		return err
	}
	card, err := r.card(st.hash)
	if err != nil {
		return err
	}
	meta, err := card.Meta()
	if err != nil {
		return err
	}
	for k, v := range meta {
		cp.Meta[k] = v
	}
	cp.Step = st.total
	if err := ckpt.Save(filepath.Join(r.Dir, AdapterFile), cp); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// loraTensors are an adapter's matrices (sharing memory), named as in its checkpoint.
func loraTensors(c model.Config, l *model.LoRA) []tensor.Tensor {
	cp, err := l.Checkpoint(c)
	if err != nil {
		panic(err) // NewLoRA and Grads make valid adapters
	}
	return cp.Params
}

// setTensors copies saved tensors into ts by name, checking every one is there.
func setTensors(ts, saved []tensor.Tensor) error {
	byName := map[string]tensor.Tensor{}
	for _, t := range saved {
		byName[t.Name] = t
	}
	if len(byName) != len(ts) {
		return fmt.Errorf("checkpoint holds %d tensors, the adapter %d", len(byName), len(ts))
	}
	for _, t := range ts {
		s, ok := byName[t.Name]
		if !ok || len(s.Data) != len(t.Data) {
			return fmt.Errorf("checkpoint tensor %s missing or of another size", t.Name)
		}
		copy(t.Data, s.Data)
	}
	return nil
}

// trainables sets what the run trains: with Config.LoRA a new adapter
// attached to the frozen model (st.adapter, its gradients st.lgrads), else
// every weight (st.grads); st.params and st.gts are their tensors.
func (r *Run) trainables(st *state) error {
	c, mcfg := r.Config, r.Model.Config
	if !c.LoRA.On() {
		if r.Model.DType() != tensor.F32 {
			return fmt.Errorf("train: %w", model.ErrReducedWeights)
		}
		st.grads = model.NewParams(mcfg)
		st.params, st.gts = r.Model.W.Tensors(mcfg), st.grads.Tensors(mcfg)
		return nil
	}
	dt, err := c.LoRA.baseDType()
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := r.Model.SetDType(dt); err != nil {
		return fmt.Errorf("train: lora.base_dtype: %w", err)
	}
	if st.adapter, err = model.NewLoRA(mcfg, c.LoRA.Rank, float32(c.LoRA.Alpha), c.LoRA.Targets, uint64(c.Seed)); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := r.Model.Attach(st.adapter); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	st.lgrads = st.adapter.Grads()
	st.params, st.gts = loraTensors(mcfg, st.adapter), loraTensors(mcfg, st.lgrads)
	return nil
}

// finishAdapter writes a LoRA run's adapter on its own, then merges it
// into the model, which every command then loads as model.fspo.
func (r *Run) finishAdapter(st *state) error {
	if st.adapter == nil {
		return nil
	}
	if err := r.saveAdapter(st); err != nil {
		return err
	}
	if err := r.Model.Attach(nil); err != nil {
		return err
	}
	r.Model.Dequantize() // a reduced base: the values it held, in F32 again
	if err := st.adapter.Merge(r.Model.Config, r.Model.W); err != nil {
		return fmt.Errorf("train: merge the adapter: %w", err)
	}
	return nil
}
