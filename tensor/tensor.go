// Package tensor holds float32 storage and the hot loops of the engine:
// matrix multiplication, vector ops and a small parallel-for. No I/O, no logging.
package tensor

import "fmt"

// Tensor is a named float32 array with a shape. It is the unit that
// optimizers and checkpoints work with; Data is row-major.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// New allocates a zeroed tensor of the given shape.
func New(name string, shape ...int) Tensor {
	return Tensor{Name: name, Shape: append([]int(nil), shape...), Data: make([]float32, Numel(shape))}
}

// Numel is the number of elements of a shape.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Check reports an error when len(Data) does not match Shape.
func (t Tensor) Check() error {
	if n := Numel(t.Shape); n != len(t.Data) {
		return fmt.Errorf("tensor %s: shape %v wants %d values, has %d", t.Name, t.Shape, n, len(t.Data))
	}
	return nil
}
