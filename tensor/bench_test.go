package tensor

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// gemmShape is one matrix product the engine runs (model dim 64, hidden 172,
// kv_dim 32, vocab 512, batch x sequence 2048 rows, head size 8).
type gemmShape struct {
	name           string
	transA, transB bool
	M, N, K        int
	lda, ldb, ldc  int // 0 means packed
	beta           float32
}

func modelShapes() []gemmShape {
	var s []gemmShape
	for _, n := range []int{32, 64, 172, 512} {
		for _, k := range []int{64, 172} {
			if (n == 32 || n == 512) && k == 172 {
				continue // no such weight
			}
			s = append(s, gemmShape{name: fmt.Sprintf("fwd_NT_M2048_N%d_K%d", n, k), transB: true, M: 2048, N: n, K: k})
		}
	}
	for _, n := range []int{64, 172} {
		for _, k := range []int{32, 64, 172, 512} {
			if n == 172 && k != 64 {
				continue
			}
			s = append(s, gemmShape{name: fmt.Sprintf("dx_NN_M2048_N%d_K%d", n, k), M: 2048, N: n, K: k})
		}
	}
	for _, m := range []int{32, 64, 172, 512} {
		for _, n := range []int{64, 172} {
			if n == 172 && m != 64 {
				continue
			}
			s = append(s, gemmShape{name: fmt.Sprintf("dW_TN_M%d_N%d_K2048", m, n), transA: true, M: m, N: n, K: 2048, beta: 1})
		}
	}
	for _, m := range []int{1, 4, 16} {
		s = append(s, gemmShape{name: fmt.Sprintf("dec_NT_M%d_N172_K64", m), transB: true, M: m, N: 172, K: 64})
		s = append(s, gemmShape{name: fmt.Sprintf("dec_NT_M%d_N512_K64", m), transB: true, M: m, N: 512, K: 64})
	}
	for _, t := range []int{64, 256, 512} {
		s = append(s,
			gemmShape{name: fmt.Sprintf("att_QKt_NT_T%d", t), transB: true, M: t, N: t, K: 8, lda: 64, ldb: 32},
			gemmShape{name: fmt.Sprintf("att_PV_NN_T%d", t), M: t, N: 8, K: t, ldb: 32, ldc: 64},
			gemmShape{name: fmt.Sprintf("att_dV_TN_T%d", t), transA: true, M: t, N: 8, K: t, ldb: 64, ldc: 32, beta: 1},
		)
	}
	// The engine's attention works on blocks of 64 query rows (model/attention.go).
	for _, t := range []int{64, 256} {
		s = append(s,
			gemmShape{name: fmt.Sprintf("blk_QKt_NT_M64_N%d_K8", t), transB: true, M: 64, N: t, K: 8, lda: 64, ldb: 32, ldc: 256},
			gemmShape{name: fmt.Sprintf("blk_PV_NN_M64_N8_K%d", t), M: 64, N: 8, K: t, lda: 256, ldb: 32, ldc: 64},
			gemmShape{name: fmt.Sprintf("blk_dV_TN_M%d_N8_K64", t), transA: true, M: t, N: 8, K: 64, lda: 256, ldb: 64, ldc: 32, beta: 1},
		)
	}
	// Decoding one token with transposed weights (model/infer.go): x W.
	for _, nk := range [][2]int{{32, 64}, {64, 64}, {172, 64}, {64, 172}} {
		s = append(s, gemmShape{name: fmt.Sprintf("dec_NN_M1_N%d_K%d", nk[0], nk[1]), M: 1, N: nk[0], K: nk[1]})
	}
	s = append(s,
		gemmShape{name: "dec_cls_NN_M1_N512_K64", M: 1, N: 512, K: 64},
		gemmShape{name: "dec_att_PV_NN_M1_N8_K512", M: 1, N: 8, K: 512, ldb: 32, ldc: 64},
		gemmShape{name: "dec_att_qKt_NN_M1_N512_K8", M: 1, N: 512, K: 8, lda: 64, ldb: 512},
		gemmShape{name: "dec_att_qKt_NT_M1_N512_K8", transB: true, M: 1, N: 512, K: 8, lda: 64, ldb: 32},
	)
	return s
}

func (g gemmShape) operands() (a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	r := rand.New(rand.NewPCG(1, 1))
	ar, ac, br, bc := g.M, g.K, g.K, g.N
	if g.transA {
		ar, ac = ac, ar
	}
	if g.transB {
		br, bc = bc, br
	}
	lda, ldb, ldc = max(g.lda, ac), max(g.ldb, bc), max(g.ldc, g.N)
	return randSlice(r, ar*lda), lda, randSlice(r, br*ldb), ldb, randSlice(r, g.M*ldc), ldc
}

func BenchmarkGemm(b *testing.B) {
	defer SetThreads(Threads())
	for _, g := range modelShapes() {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", g.name, threads), func(b *testing.B) {
				SetThreads(threads)
				a, lda, bb, ldb, c, ldc := g.operands()
				for b.Loop() {
					Gemm(g.transA, g.transB, g.M, g.N, g.K, a, lda, bb, ldb, g.beta, c, ldc)
				}
				b.ReportMetric(2*float64(g.M*g.N*g.K)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func BenchmarkGemmSquare1024(b *testing.B) {
	defer SetThreads(Threads())
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			b.ReportMetric(MeasureGemm(false, false, 1024, 1024, 1024, threads, b.Elapsed()+1), "GFLOP/s")
			g := gemmShape{M: 1024, N: 1024, K: 1024}
			SetThreads(threads)
			a, lda, bb, ldb, c, ldc := g.operands()
			for b.Loop() {
				Gemm(false, false, 1024, 1024, 1024, a, lda, bb, ldb, 0, c, ldc)
			}
			b.ReportMetric(2*1024*1024*1024*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func BenchmarkVec(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, n := range []int{64, 512} {
		x, y, d := randSlice(r, n), randSlice(r, n), make([]float32, n)
		var sink float32
		ops := []struct {
			name string
			f    func()
		}{
			{"Dot", func() { sink += Dot(x, y) }},
			{"Axpy", func() { Axpy(0.5, x, d) }},
			{"Scale", func() { Scale(1.0001, d) }},
			{"Add", func() { Add(d, x, y) }},
			{"Mul", func() { Mul(d, x, y) }},
			{"Sum", func() { sink += Sum(x) }},
			{"SumSquares", func() { sink += SumSquares(x) }},
			{"Max", func() { sink += Max(x) }},
			{"Argmax", func() { sink += float32(Argmax(x)) }},
			{"ExpSub", func() { sink += ExpSub(d, x, 3) }},
		}
		for _, op := range ops {
			b.Run(fmt.Sprintf("%s/n=%d", op.name, n), func(b *testing.B) {
				for b.Loop() {
					op.f()
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
			})
		}
		_ = sink
	}
}

// BenchmarkStream is the machine's memory read rate, the ceiling of a
// decoding step: Sum over 256 MB in huge pages, split in contiguous halves
// for two threads (as a team splits a decoded row's product). Decoding reads
// every weight once a token, so a model of B bytes decodes at no more than
// this rate / B tokens per second.
func BenchmarkStream(b *testing.B) {
	x := MakeHuge[float32](64 << 20)
	for i := range x {
		x[i] = 1
	}
	for _, th := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads%d", th), func(b *testing.B) {
			var sums [2]float32
			for b.Loop() {
				var wg sync.WaitGroup
				n := len(x) / th
				for i := range th {
					wg.Go(func() { sums[i] = Sum(x[i*n : (i+1)*n]) })
				}
				wg.Wait()
			}
			if sums[0] != float32(len(x)/th) {
				b.Fatalf("sum %g, want %d", sums[0], len(x)/th)
			}
			b.ReportMetric(float64(4*len(x))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

// BenchmarkDecodeStep180M times the weight products of one decoding step of
// the serving benchmark's model (SmolLM2-135M's layers: 576 wide, 1536
// feed-forward, 3 KV heads of 64, 30 layers, a 128,256-token classifier) for
// one row and for a batch of 16 rows (16 users decoding together).
func BenchmarkDecodeStep180M(b *testing.B) {
	defer SetThreads(Threads())
	type prod struct{ n, k, times int }
	layer := []prod{{576, 576, 2}, {192, 576, 2}, {1536, 576, 2}, {576, 1536, 1}}
	r := rand.New(rand.NewPCG(3, 3))
	var ws [][]float32
	for _, p := range layer {
		ws = append(ws, randSlice(r, p.n*p.k))
	}
	cls := randSlice(r, 128256*576)
	for _, threads := range []int{1, 2} {
		for _, m := range []int{1, 16} {
			b.Run(fmt.Sprintf("rows=%d/threads=%d", m, threads), func(b *testing.B) {
				SetThreads(threads)
				x, y := randSlice(r, m*1536), make([]float32, m*128256)
				flops := 0
				for b.Loop() {
					flops = 0
					for range 30 {
						for i, p := range layer {
							for range p.times {
								Gemm(false, true, m, p.n, p.k, x, p.k, ws[i], p.k, 0, y, p.n)
								flops += 2 * m * p.n * p.k
							}
						}
					}
					Gemm(false, true, m, 128256, 576, x, 576, cls, 576, 0, y, 128256)
					flops += 2 * m * 128256 * 576
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(sec*1e3, "ms/step")
				b.ReportMetric(float64(flops)/sec/1e9, "GFLOP/s")
			})
		}
	}
}
