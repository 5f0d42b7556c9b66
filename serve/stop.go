package serve

import "strings"

// StopScanner applies a request's stop sequences to generated text arriving
// in pieces: Push returns the text that can be shown now — everything up to
// the first stop sequence, holding back a tail that could still become one —
// and reports when a stop sequence has appeared (its text is never shown).
// Engines use it to honour AnswerRequest.Stop, streamed or not.
type StopScanner struct {
	stops   []string
	pending string
	out     strings.Builder
	hit     bool
}

// NewStopScanner returns a scanner for stops (empty strings are ignored).
func NewStopScanner(stops []string) *StopScanner {
	sc := &StopScanner{}
	for _, s := range stops {
		if s != "" {
			sc.stops = append(sc.stops, s)
		}
	}
	return sc
}

// Push adds piece; it returns the text safe to emit and whether a stop
// sequence was found (then generation should end; later pushes emit nothing).
func (sc *StopScanner) Push(piece string) (string, bool) {
	if sc.hit {
		return "", true
	}
	buf := sc.pending + piece
	first := -1
	for _, s := range sc.stops {
		if i := strings.Index(buf, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		sc.hit, sc.pending = true, ""
		sc.out.WriteString(buf[:first])
		return buf[:first], true
	}
	keep := 0 // the longest tail of buf that begins a stop sequence
	for _, s := range sc.stops {
		for l := min(len(s)-1, len(buf)); l > keep; l-- {
			if strings.HasSuffix(buf, s[:l]) {
				keep = l
				break
			}
		}
	}
	emit := buf[:len(buf)-keep]
	sc.pending = buf[len(buf)-keep:]
	sc.out.WriteString(emit)
	return emit, false
}

// Flush ends the text: the held-back tail is released (no stop followed it).
func (sc *StopScanner) Flush() string {
	p := sc.pending
	sc.pending = ""
	sc.out.WriteString(p)
	return p
}

// Hit reports whether a stop sequence was found.
func (sc *StopScanner) Hit() bool { return sc.hit }

// Text is everything emitted so far.
func (sc *StopScanner) Text() string { return sc.out.String() }
