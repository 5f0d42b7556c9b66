package serve

import "math"

// z95 is the standard normal quantile for a two-sided 95% interval.
const z95 = 1.959963984540054

// Wilson returns the Wilson score interval for k successes in n trials at
// normal quantile z (E. B. Wilson, "Probable inference, the law of
// succession, and statistical inference", JASA 22, 1927; the form in
// Agresti & Coull, The American Statistician 52, 1998, eq. 2).
func Wilson(k, n int, z float64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	p := float64(k) / float64(n)
	nf := float64(n)
	z2 := z * z
	center := (p + z2/(2*nf)) / (1 + z2/nf)
	half := z / (1 + z2/nf) * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return max(0, center-half), min(1, center+half)
}

// BinomialUpperP is the one-sided exact binomial p-value P(X ≥ k) for
// X ~ Binomial(n, 1/2): the chance of at least k wins if both systems were
// equally good. Terms are summed in log space (math.Lgamma) so large n is fine.
func BinomialUpperP(k, n int) float64 {
	if k <= 0 {
		return 1
	}
	if k > n {
		return 0
	}
	lgn, _ := math.Lgamma(float64(n + 1))
	sum := 0.0
	for i := k; i <= n; i++ {
		lgi, _ := math.Lgamma(float64(i + 1))
		lgr, _ := math.Lgamma(float64(n - i + 1))
		sum += math.Exp(lgn - lgi - lgr - float64(n)*math.Ln2)
	}
	return min(1, sum)
}
