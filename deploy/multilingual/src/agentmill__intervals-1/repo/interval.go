// Package intervals works with half-open integer intervals [Start, End).
package intervals

import (
	"errors"
	"fmt"
)

// Interval is the half-open range [Start, End): Start is in it, End is not.
type Interval struct {
	Start int
	End   int
}

// ErrReversed is returned by New when the end comes before the start.
var ErrReversed = errors.New("intervals: end before start")

// New returns [start, end), or ErrReversed when end < start. An empty interval
// (start == end) is allowed.
func New(start, end int) (Interval, error) {
	if end < start {
		return Interval{}, fmt.Errorf("%w: [%d, %d)", ErrReversed, start, end)
	}
	return Interval{Start: start, End: end}, nil
}

// MustNew is New for values known to be valid; it panics otherwise.
func MustNew(start, end int) Interval {
	iv, err := New(start, end)
	if err != nil {
		panic(err)
	}
	return iv
}

// Len is the number of integers in the interval.
func (iv Interval) Len() int { return iv.End - iv.Start }

// Empty reports whether the interval holds no integer.
func (iv Interval) Empty() bool { return iv.Start == iv.End }

// Contains reports whether x is in the interval.
func (iv Interval) Contains(x int) bool { return iv.Start <= x && x < iv.End }

// Overlaps reports whether the two intervals share at least one integer. Intervals
// that only touch ([1, 3) and [3, 5)) share none, so they do not overlap.
func (iv Interval) Overlaps(other Interval) bool {
	return iv.Start < other.End && other.Start < iv.End
}

// String writes the interval as [Start, End).
func (iv Interval) String() string { return fmt.Sprintf("[%d, %d)", iv.Start, iv.End) }
