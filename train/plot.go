package train

import (
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// PlotMetrics draws the loss (and, for the preference stage, the implicit
// reward accuracy) against the step as a PNG.
func PlotMetrics(metricsPath, pngPath string) error {
	ms, err := ReadMetrics(metricsPath)
	if err != nil {
		return fmt.Errorf("plot metrics: %w", err)
	}
	if len(ms) == 0 {
		return nil
	}
	loss, acc := make(plotter.XYs, len(ms)), make(plotter.XYs, len(ms))
	hasAcc := false
	for i, m := range ms {
		loss[i] = plotter.XY{X: float64(m.Step), Y: m.Loss}
		acc[i] = plotter.XY{X: float64(m.Step), Y: m.Accuracy}
		hasAcc = hasAcc || m.Accuracy != 0
	}
	mk := func(title, ylabel string, xy plotter.XYs) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, "step", ylabel
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil, err
		}
		p.Add(l, plotter.NewGrid())
		return p, nil
	}
	plots := []*plot.Plot{}
	p, err := mk("training loss", "loss", loss)
	if err != nil {
		return err
	}
	plots = append(plots, p)
	if hasAcc {
		if p, err = mk("implicit reward accuracy (batch)", "accuracy", acc); err != nil {
			return err
		}
		plots = append(plots, p)
	}
	img := vgimg.New(vg.Length(5*len(plots))*vg.Inch, 3.5*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots)}
	for i, p := range plots {
		p.Draw(tiles.At(dc, i, 0))
	}
	return savePNG(img, pngPath)
}
