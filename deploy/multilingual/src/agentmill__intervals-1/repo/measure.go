package intervals

// Total is the number of integers covered by ivs, each counted once.
func Total(ivs []Interval) int {
	total := 0
	for _, iv := range Merge(ivs) {
		total += iv.Len()
	}
	return total
}

// Gaps returns the intervals inside bounds that no interval of ivs covers,
// ordered by Start.
func Gaps(ivs []Interval, bounds Interval) []Interval {
	var gaps []Interval
	cursor := bounds.Start
	for _, iv := range Merge(ivs) {
		if iv.End <= bounds.Start || iv.Start >= bounds.End {
			continue
		}
		if iv.Start > cursor {
			gaps = append(gaps, Interval{Start: cursor, End: iv.Start})
		}
		if iv.End > cursor {
			cursor = iv.End
		}
	}
	if cursor < bounds.End {
		gaps = append(gaps, Interval{Start: cursor, End: bounds.End})
	}
	return gaps
}
