package optim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Schedule gives the learning rate for a step. step is the number of
// completed optimizer steps, so the first update uses LR(0) (the
// convention of PyTorch's LambdaLR and Hugging Face's schedules; with a
// warm-up, the first update has learning rate 0). Negative steps are
// treated as 0.
type Schedule interface {
	LR(step int64) float32
}

// Constant warms up linearly from 0 to Peak over Warmup steps, then stays
// at Peak (Hugging Face's constant_with_warmup; Warmup 0 is a plain constant).
type Constant struct {
	Peak   float32
	Warmup int64
}

// WarmupCosine warms up linearly from 0 to Peak over Warmup steps, then
// follows a half cosine from Peak down to Peak·MinRatio at step Total and
// stays there (Loshchilov & Hutter, "SGDR", ICLR 2017, eq. 5 without
// restarts; Hugging Face's get_cosine_schedule_with_warmup when MinRatio = 0):
//
//	lr(s) = Peak·s/Warmup                                   for s < Warmup
//	lr(s) = Peak·(r + (1−r)·(1 + cos(π·p))/2),  p = (s−Warmup)/(Total−Warmup) clamped to [0, 1]
type WarmupCosine struct {
	Peak          float32
	Warmup, Total int64
	MinRatio      float32 // final learning rate as a fraction of Peak, in [0, 1]
}

// WarmupLinear warms up linearly from 0 to Peak over Warmup steps, then
// decays linearly to Peak·MinRatio at step Total and stays there (Hugging
// Face's get_linear_schedule_with_warmup when MinRatio = 0):
//
//	lr(s) = Peak·(r + (1−r)·(1 − p)),  p = (s−Warmup)/(Total−Warmup) clamped to [0, 1]
type WarmupLinear struct {
	Peak          float32
	Warmup, Total int64
	MinRatio      float32
}

// warmup returns the warm-up factor s/w and whether s is still warming up.
func warmup(s, w int64) (float64, bool) {
	if s < 0 {
		s = 0
	}
	if s < w {
		return float64(s) / float64(w), true
	}
	return 1, false
}

// progress is the clamped fraction of the decay phase done at step s.
func progress(s, w, total int64) float64 {
	p := float64(s-w) / float64(total-w)
	return math.Min(1, math.Max(0, p))
}

// LR implements Schedule.
func (c Constant) LR(step int64) float32 {
	f, _ := warmup(step, c.Warmup)
	return float32(float64(c.Peak) * f)
}

// LR implements Schedule.
func (c WarmupCosine) LR(step int64) float32 {
	if f, ok := warmup(step, c.Warmup); ok {
		return float32(float64(c.Peak) * f)
	}
	r := float64(c.MinRatio)
	p := progress(step, c.Warmup, c.Total)
	return float32(float64(c.Peak) * (r + (1-r)*0.5*(1+math.Cos(math.Pi*p))))
}

// LR implements Schedule.
func (c WarmupLinear) LR(step int64) float32 {
	if f, ok := warmup(step, c.Warmup); ok {
		return float32(float64(c.Peak) * f)
	}
	r := float64(c.MinRatio)
	p := progress(step, c.Warmup, c.Total)
	return float32(float64(c.Peak) * (r + (1-r)*(1-p)))
}

func validPeak(peak float32) error {
	if !(peak > 0) || !finite(peak) {
		return fmt.Errorf("peak learning rate %v must be finite and > 0", peak)
	}
	return nil
}

func validDecay(peak float32, warmup, total int64, minRatio float32) error {
	if err := validPeak(peak); err != nil {
		return err
	}
	if warmup < 0 {
		return fmt.Errorf("warm-up %d steps must be >= 0", warmup)
	}
	if total <= warmup {
		return fmt.Errorf("total %d steps must exceed the warm-up of %d steps", total, warmup)
	}
	if !(minRatio >= 0 && minRatio <= 1) {
		return fmt.Errorf("minimum ratio %v must be in [0, 1]", minRatio)
	}
	return nil
}

// Validate checks the schedule's parameters.
func (c Constant) Validate() error {
	if err := validPeak(c.Peak); err != nil {
		return fmt.Errorf("constant schedule: %w", err)
	}
	if c.Warmup < 0 {
		return fmt.Errorf("constant schedule: warm-up %d steps must be >= 0", c.Warmup)
	}
	return nil
}

// Validate checks the schedule's parameters.
func (c WarmupCosine) Validate() error {
	if err := validDecay(c.Peak, c.Warmup, c.Total, c.MinRatio); err != nil {
		return fmt.Errorf("cosine schedule: %w", err)
	}
	return nil
}

// Validate checks the schedule's parameters.
func (c WarmupLinear) Validate() error {
	if err := validDecay(c.Peak, c.Warmup, c.Total, c.MinRatio); err != nil {
		return fmt.Errorf("linear schedule: %w", err)
	}
	return nil
}

// ScheduleNames lists the names ParseSchedule accepts; "warmup-cosine" and
// "warmup-linear" (or with an underscore) are accepted as aliases.
var ScheduleNames = []string{"constant", "cosine", "linear"}

// ParseSchedule builds a validated schedule from its name: "constant"
// (warm-up then constant; total is not used), "cosine" or "warmup-cosine"
// (WarmupCosine) and "linear" or "warmup-linear" (WarmupLinear). The
// decaying schedules take an optional minimum ratio after a colon, e.g.
// "cosine:0.1" ends at 10% of peak; the default is 0.
func ParseSchedule(name string, peak float32, warmup, total int64) (Schedule, error) {
	base, ratioText, hasRatio := strings.Cut(name, ":")
	var ratio float32
	if hasRatio {
		if base == "constant" {
			return nil, fmt.Errorf("schedule %q: constant takes no minimum ratio", name)
		}
		r, err := strconv.ParseFloat(ratioText, 32)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: minimum ratio after ':' is not a number: %w", name, err)
		}
		ratio = float32(r)
	}
	var s interface {
		Schedule
		Validate() error
	}
	switch base {
	case "constant":
		s = Constant{Peak: peak, Warmup: warmup}
	case "cosine", "warmup-cosine", "warmup_cosine":
		s = WarmupCosine{Peak: peak, Warmup: warmup, Total: total, MinRatio: ratio}
	case "linear", "warmup-linear", "warmup_linear":
		s = WarmupLinear{Peak: peak, Warmup: warmup, Total: total, MinRatio: ratio}
	default:
		return nil, fmt.Errorf("unknown schedule %q (want one of %s, optionally with :min_ratio)", name, strings.Join(ScheduleNames, ", "))
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}
