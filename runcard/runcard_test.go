package runcard

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	c := &Card{Version: Version, Base: Model{Path: "/m/base.bin", SHA256: "ab"}, Init: Model{Path: "/r/model.fspo", SHA256: "cd"},
		Prompt: Prompt{Template: TemplateEpisode, Variant: "cot", Layout: "paper", Shots: 6},
		Train:  Train{Stage: "pref", Loss: "ipo_norm", Beta: 0.2, Config: json.RawMessage(`{"stage":"pref"}`)},
		Data:   Data{Dir: "/d", ManifestSHA256: "ef", Items: "12"}, FSPO: "v0 abc"}
	meta, err := c.Meta()
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := FromMeta(meta)
	if err != nil || !ok {
		t.Fatalf("FromMeta: %v %v", ok, err)
	}
	a, _ := json.Marshal(c)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Errorf("round trip:\n%s\nwant\n%s", b, a)
	}
}

// TestFromLegacyMeta reads the string map fspo train wrote before the card.
func TestFromLegacyMeta(t *testing.T) {
	meta := map[string]string{"init": "/m/base.bin", "data": "/d", "variant": "plain", "layout": "compact", "shots": "4", "items": "99",
		"train_config": `{"stage":"pref","objective":"dpo","beta":0.1}`}
	c, ok, err := FromMeta(meta)
	if err != nil || !ok {
		t.Fatalf("FromMeta: %v %v", ok, err)
	}
	want := Prompt{Template: TemplateEpisode, Variant: "plain", Layout: "compact", Shots: 4}
	if c.Version != 0 || c.Prompt != want || c.Init.Path != "/m/base.bin" || c.Base.Path != "/m/base.bin" || c.Data.Dir != "/d" || c.Data.Items != "99" ||
		c.Train.Stage != "pref" || c.Train.Loss != "dpo" || c.Train.Beta != 0.1 || string(c.Train.Config) != meta["train_config"] {
		t.Errorf("legacy card %+v", c)
	}
	if c, ok, err := FromMeta(map[string]string{"stage": "converted"}); c != nil || ok || err != nil {
		t.Errorf("meta of no trained model: %v %v %v, want nil false nil", c, ok, err)
	}
	for _, bad := range []map[string]string{{"shots": "four"}, {"train_config": "{"}, {MetaKey: "{"}, {MetaKey: `{"version":99}`}} {
		if _, _, err := FromMeta(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestReconcile(t *testing.T) {
	card := &Card{Prompt: Prompt{Template: TemplateEpisode, Variant: "plain", Layout: "compact", Shots: 4}}
	got, err := card.Reconcile("M", Prompt{}, false, nil)
	if err != nil || got != card.Prompt {
		t.Errorf("unset: %+v %v, want the card's", got, err)
	}
	_, err = card.Reconcile("M", Prompt{Layout: "paper"}, false, nil)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Card != "compact" || ce.Given != "paper" || !strings.Contains(err.Error(), "M was trained with layout compact, given layout paper") {
		t.Errorf("conflict: %v", err)
	}
	var warned []string
	got, err = card.Reconcile("M", Prompt{Variant: "cot", Shots: 8}, true, func(w string) { warned = append(warned, w) })
	if err != nil || got.Variant != "cot" || got.Shots != 8 || len(warned) != 2 {
		t.Errorf("forced: %+v %v, warnings %q", got, err, warned)
	}
	zero := &Card{Prompt: Prompt{Variant: "zero-shot", Layout: "compact"}}
	if got, err := zero.Reconcile("M", Prompt{Variant: "zero-shot", Shots: 4}, false, nil); err != nil || got.Shots != 4 {
		t.Errorf("zero-shot card accepts any shots: %+v %v", got, err)
	}
	var none *Card
	if got, err := none.Reconcile("M", Prompt{Shots: 3}, false, nil); err != nil || got.Shots != 3 {
		t.Errorf("nil card: %+v %v", got, err)
	}
}

// FuzzFromMeta: any meta value gives a card or an error, never a panic.
func FuzzFromMeta(f *testing.F) {
	f.Add(`{"version":1,"prompt":{"shots":4}}`, "4", `{"stage":"sft"}`)
	f.Add("{", "x", "")
	f.Fuzz(func(t *testing.T, card, shots, cfg string) {
		FromMeta(map[string]string{MetaKey: card})
		FromMeta(map[string]string{"shots": shots, "train_config": cfg})
	})
}
