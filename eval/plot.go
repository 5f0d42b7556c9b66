package eval

import (
	"bytes"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// winrateBars is the bars' data: heights with their interval as offsets.
type winrateBars struct {
	rates  plotter.Values
	lo, hi []float64
}

func (w winrateBars) Len() int                    { return len(w.rates) }
func (w winrateBars) XY(i int) (float64, float64) { return float64(i), w.rates[i] }
func (w winrateBars) YError(i int) (float64, float64) {
	return w.rates[i] - w.lo[i], w.hi[i] - w.rates[i]
}

// plotWinrates draws each evaluated method's overall win rate against base
// as a bar with its 95% interval as a whisker, and the 50% line.
func plotWinrates(r *Report) ([]byte, error) {
	var bars winrateBars
	var names []string
	for _, m := range r.shownMethods() {
		c, ok := r.Overall[m]
		if !ok {
			continue
		}
		names = append(names, m)
		bars.rates = append(bars.rates, c.Percent)
		bars.lo = append(bars.lo, c.Low)
		bars.hi = append(bars.hi, c.High)
	}
	p := plot.New()
	p.Title.Text = "Win rate vs base (judge: " + r.Config.Judge + ", 95% CI over users)"
	p.Y.Label.Text = "win rate (%)"
	p.Y.Min, p.Y.Max = 0, 100
	if len(names) > 0 {
		bc, err := plotter.NewBarChart(bars.rates, vg.Points(28))
		if err != nil {
			return nil, err
		}
		bc.Color = color.RGBA{R: 70, G: 110, B: 180, A: 255}
		bc.LineStyle.Width = 0
		eb, err := plotter.NewYErrorBars(bars)
		if err != nil {
			return nil, err
		}
		half, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 50}, {X: float64(len(names)) - 0.5, Y: 50}})
		if err != nil {
			return nil, err
		}
		half.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		half.LineStyle.Color = color.Gray{Y: 120}
		p.Add(bc, eb, half)
		p.NominalX(names...)
	}
	return pngBytes(p, vg.Points(90+60*float64(len(names))), vg.Points(300))
}

// pngBytes renders p as a PNG of the given size.
func pngBytes(p *plot.Plot, w, h vg.Length) ([]byte, error) {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
