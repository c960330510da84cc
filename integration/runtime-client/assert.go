package main

import (
	"fmt"
	"reflect"
	"sort"

	"github.com/containerd/containerd/errdefs"
)

// wantErr fails unless err is of the errdefs class tested by is (named class).
func wantErr(err error, is func(error) bool, class string) error {
	if err == nil {
		return fmt.Errorf("got no error, want %s", class)
	}
	if !is(err) {
		return fmt.Errorf("got %v, want %s", err, class)
	}
	return nil
}

func wantNotFound(err error) error { return wantErr(err, errdefs.IsNotFound, "NotFound") }

func wantAlreadyExists(err error) error {
	return wantErr(err, errdefs.IsAlreadyExists, "AlreadyExists")
}

func wantFailedPrecondition(err error) error {
	return wantErr(err, errdefs.IsFailedPrecondition, "FailedPrecondition")
}

func isNotFound(err error) bool { return errdefs.IsNotFound(err) }

// wrap prefixes err with the step that produced it (nil stays nil).
func wrap(step string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", step, err)
}

// same fails when got differs from want.
func same[T comparable](what string, got, want T) error {
	if got != want {
		return fmt.Errorf("%s = %v, want %v", what, got, want)
	}
	return nil
}

// sameLabels compares label sets, treating nil and empty alike.
func sameLabels(what string, got, want map[string]string) error {
	if len(got) == 0 && len(want) == 0 {
		return nil
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("%s labels = %v, want %v", what, got, want)
	}
	return nil
}

// sameSet compares two lists of names regardless of order.
func sameSet(what string, got, want []string) error {
	g := append([]string(nil), got...)
	w := append([]string(nil), want...)
	sort.Strings(g)
	sort.Strings(w)
	if len(g) == 0 && len(w) == 0 {
		return nil
	}
	if !reflect.DeepEqual(g, w) {
		return fmt.Errorf("%s = %v, want %v", what, g, w)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
