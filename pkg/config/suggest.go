package config

import "strings"

// Suggest returns the name in known that s most likely misspells, or "" when none is close: the
// one at the smallest edit distance (case-insensitive), if that distance is at most 3 and at most
// half the name's length, so that a short name is not suggested for an unrelated word. Ties go to
// the name that sorts first. known is not modified.
func Suggest(s string, known []string) string {
	best, bestD := "", 0
	ls := strings.ToLower(s)
	for _, k := range known {
		d := EditDistance(ls, strings.ToLower(k))
		if d == 0 || d > 3 || d > len(k)/2 {
			continue
		}
		if best == "" || d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	return best
}

// DidYouMean returns " (did you mean NAME?)" with Suggest's answer, or "" when it has none: the
// tail of an error for an unknown name in configuration (a variable, a provider, a region).
func DidYouMean(s string, known []string) string {
	if best := Suggest(s, known); best != "" {
		return " (did you mean " + best + "?)"
	}
	return ""
}

// EditDistance is the Levenshtein distance between a and b in characters (Unicode code points):
// what "did you mean" ranks names by, and what the desk counts an agent's edits of a suggestion
// in. It takes O(len(a)·len(b)) time: callers bound the texts.
func EditDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
