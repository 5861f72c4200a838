package intervals

import "sort"

// Sorted returns a copy of ivs ordered by Start, then End.
func Sorted(ivs []Interval) []Interval {
	out := append([]Interval(nil), ivs...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Start != out[j].Start {
			return out[i].Start < out[j].Start
		}
		return out[i].End < out[j].End
	})
	return out
}

// Merge returns the smallest list of intervals that covers exactly the integers
// of ivs, ordered by Start. Empty intervals are dropped. Intervals that share
// integers or that touch end to start become one.
func Merge(ivs []Interval) []Interval {
	var out []Interval
	for _, iv := range Sorted(ivs) {
		if iv.Empty() {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Overlaps(iv) {
			if iv.End > out[n-1].End {
				out[n-1].End = iv.End
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}
