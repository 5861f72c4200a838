package intervals

import (
	"reflect"
	"testing"
)

func ivs(pairs ...int) []Interval {
	var out []Interval
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, MustNew(pairs[i], pairs[i+1]))
	}
	return out
}

func TestMergeOverlapping(t *testing.T) {
	got := Merge(ivs(5, 8, 1, 3, 2, 6))
	if want := ivs(1, 8); !reflect.DeepEqual(got, want) {
		t.Fatalf("Merge = %v, want %v", got, want)
	}
}

func TestMergeKeepsDisjointIntervalsApart(t *testing.T) {
	got := Merge(ivs(10, 12, 1, 3))
	if want := ivs(1, 3, 10, 12); !reflect.DeepEqual(got, want) {
		t.Fatalf("Merge = %v, want %v", got, want)
	}
}

func TestMergeDropsEmptyIntervals(t *testing.T) {
	got := Merge(ivs(4, 4, 1, 2))
	if want := ivs(1, 2); !reflect.DeepEqual(got, want) {
		t.Fatalf("Merge = %v, want %v", got, want)
	}
}

func TestMergeContainedInterval(t *testing.T) {
	got := Merge(ivs(1, 10, 3, 4))
	if want := ivs(1, 10); !reflect.DeepEqual(got, want) {
		t.Fatalf("Merge = %v, want %v", got, want)
	}
}

func TestTotalCountsSharedIntegersOnce(t *testing.T) {
	if got := Total(ivs(1, 5, 3, 8)); got != 7 {
		t.Fatalf("Total = %d, want 7", got)
	}
}

func TestGapsInsideBounds(t *testing.T) {
	got := Gaps(ivs(2, 4, 6, 7), MustNew(0, 10))
	if want := ivs(0, 2, 4, 6, 7, 10); !reflect.DeepEqual(got, want) {
		t.Fatalf("Gaps = %v, want %v", got, want)
	}
}
