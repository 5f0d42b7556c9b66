package eval

import (
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// ElicitationPNG is the elicitation curves' plot.
const ElicitationPNG = "elicitation.png"

// curve is one strategy's points: x = log2 k, y = win rate, whiskers the
// interval.
type curve struct{ x, y, lo, hi []float64 }

func (c curve) Len() int                        { return len(c.x) }
func (c curve) XY(i int) (float64, float64)     { return c.x[i], c.y[i] }
func (c curve) YError(i int) (float64, float64) { return c.y[i] - c.lo[i], c.hi[i] - c.y[i] }

// plotElicitation draws FSPO's win rate against the number of labels for
// random and active choice, with 95% intervals.
func plotElicitation(e *Elicitation) ([]byte, error) {
	p := plot.New()
	p.Title.Text = "FSPO: win rate vs labels per user (95% CI over users)"
	p.X.Label.Text = "labelled pairs k"
	p.Y.Label.Text = "win rate vs base (%)"
	var ticks []plot.Tick
	for _, k := range ElicitLabels {
		ticks = append(ticks, plot.Tick{Value: math.Log2(float64(k)), Label: strconv.Itoa(k)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	colors := map[string]color.Color{Random: color.RGBA{R: 150, G: 150, B: 150, A: 255}, Active: color.RGBA{R: 200, G: 80, B: 40, A: 255}}
	for _, strategy := range []string{Random, Active} {
		rates := e.Random
		if strategy == Active {
			rates = e.Active
		}
		var c curve
		for _, k := range ElicitLabels {
			key := strconv.Itoa(k)
			shift := map[string]float64{Random: -0.03, Active: 0.03}[strategy] // whiskers side by side
			c.x = append(c.x, math.Log2(float64(k))+shift)
			c.y = append(c.y, rates[key])
			c.lo = append(c.lo, e.CI95[strategy][key][0])
			c.hi = append(c.hi, e.CI95[strategy][key][1])
		}
		line, points, err := plotter.NewLinePoints(c)
		if err != nil {
			return nil, err
		}
		line.Color, points.Color = colors[strategy], colors[strategy]
		eb, err := plotter.NewYErrorBars(c)
		if err != nil {
			return nil, err
		}
		eb.Color = colors[strategy]
		p.Add(line, points, eb)
		p.Legend.Add(strategy, line, points)
	}
	p.Legend.Top, p.Legend.Left = false, false
	return pngBytes(p, vg.Points(420), vg.Points(300))
}

// elicitationMarkdown is report.md's section on the curves.
func (e *Elicitation) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Labels asked at random vs actively (fspo, win rate vs base)\n\n")
	fmt.Fprintf(&b, "| labels k | random | active | shots kept (random / active) |\n| --- | --- | --- | --- |\n")
	for _, k := range ElicitLabels {
		key := strconv.Itoa(k)
		r, a := e.CI95[Random][key], e.CI95[Active][key]
		fmt.Fprintf(&b, "| %d | %.1f [%.1f, %.1f] | %.1f [%.1f, %.1f] | %.2f / %.2f |\n", k, e.Random[key], r[0], r[1], e.Active[key], a[0], a[1],
			e.ShotsKept[Random][key], e.ShotsKept[Active][key])
	}
	fmt.Fprintf(&b, "\nActive: each next pair maximizes the expected information gain over %d plausible users (training users' contexts, weighed by the labels so far; package elicit), from %.1f candidate pairs per user (their records that are not evaluation queries). Committee scoring %.2f s per user, %.0f µs per choice. Plot: %s.\n",
		e.Members, e.MeanPool, e.ScoringS, e.ChoiceUS, ElicitationPNG)
	return b.String()
}
