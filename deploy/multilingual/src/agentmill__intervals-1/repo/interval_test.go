package intervals

import (
	"errors"
	"testing"
)

func TestNewRejectsReversedBounds(t *testing.T) {
	if _, err := New(5, 1); !errors.Is(err, ErrReversed) {
		t.Fatalf("New(5, 1) = %v, want ErrReversed", err)
	}
}

func TestNewAllowsEmptyInterval(t *testing.T) {
	iv, err := New(4, 4)
	if err != nil || !iv.Empty() || iv.Len() != 0 {
		t.Fatalf("New(4, 4) = %v, %v", iv, err)
	}
}

func TestContainsIsHalfOpen(t *testing.T) {
	iv := MustNew(1, 3)
	for x, want := range map[int]bool{0: false, 1: true, 2: true, 3: false} {
		if got := iv.Contains(x); got != want {
			t.Errorf("%v.Contains(%d) = %v, want %v", iv, x, got, want)
		}
	}
}

func TestOverlappingIntervalsOverlap(t *testing.T) {
	if !MustNew(1, 4).Overlaps(MustNew(3, 6)) || !MustNew(3, 6).Overlaps(MustNew(1, 4)) {
		t.Fatal("[1, 4) and [3, 6) share 3")
	}
}

func TestAdjacentIntervalsDoNotOverlap(t *testing.T) {
	if MustNew(1, 3).Overlaps(MustNew(3, 5)) || MustNew(3, 5).Overlaps(MustNew(1, 3)) {
		t.Fatal("[1, 3) and [3, 5) share no integer")
	}
}

func TestString(t *testing.T) {
	if got := MustNew(-2, 7).String(); got != "[-2, 7)" {
		t.Fatalf("String() = %q", got)
	}
}
