package shift

import "unsafe"

// bytesToString views b as a string without copying; only for arguments that
// do not outlive b (strconv.ParseFloat).
func bytesToString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
