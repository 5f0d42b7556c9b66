package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"time"

	"fspo/gguf"
	"fspo/model"
	"fspo/tensor"
)

func main() {
	m, _, err := gguf.Load(os.Args[1])
	if err != nil {
		panic(err)
	}
	dt, _ := tensor.ParseDType(os.Args[2])
	if err := m.SetDType(dt); err != nil {
		panic(err)
	}
	th, _ := strconv.Atoi(os.Args[3])
	tensor.SetThreads(th)
	dec := func() float64 {
		t := time.Now()
		out, err := m.Generate(context.Background(), []int{128000}, model.GenOptions{MaxTokens: 128}, nil)
		if err != nil {
			panic(err)
		}
		return float64(len(out.Tokens)) / time.Since(t).Seconds()
	}
	m.PrepareClassifierScreen()
	if len(os.Args) > 4 {
		f, _ := os.Create(os.Args[4])
		pprof.StartCPUProfile(f)
		for range 3 {
			fmt.Println(dec())
		}
		pprof.StopCPUProfile()
		return
	}
	var a, b []float64
	for range 7 {
		m.SetClassifierScreen(true)
		m.PrepareClassifierScreen()
		a = append(a, dec())
		m.SetClassifierScreen(false)
		b = append(b, dec())
	}
	sort.Float64s(a)
	sort.Float64s(b)
	fmt.Printf("%s %d threads: screen %.1f, whole %.1f (medians of 7), ratio %.3f; screen %v whole %v\n", os.Args[2], th, a[3], b[3], a[3]/b[3], a, b)
}
