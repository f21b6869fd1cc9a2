package norms

// Entries calls yield with each shift held, oldest first (shifts with equal
// starts in the order they were inserted), until yield returns false.
// Inserting them in this order into a NewWindow of the same span and
// tolerance gives a window that answers every question as w does: this is
// what a checkpoint of the window saves. It does not change w.
func (w *Window) Entries(yield func(t int64, rate, crew float64) bool) {
	for _, e := range w.entries {
		if !yield(e.t, e.rate, e.crew) {
			return
		}
	}
}
