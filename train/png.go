package train

import (
	"bytes"

	"gonum.org/v1/plot/vg/vgimg"

	"fspo/atomicfile"
)

func savePNG(img *vgimg.Canvas, path string) error {
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, buf.Bytes())
}
