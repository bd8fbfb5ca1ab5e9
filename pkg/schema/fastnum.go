package schema

// Numbers on the fast path are compared exactly, as decimals, never as float64: the generic validator
// compares big.Rat values, so 90.0000000000000001 is above a maximum of 90 and 1.0 is an integer.

// decimal is a JSON number literal read in place: its value is ±0.d[first]…d[last] × 10^point, where
// d is the digit string intp+frac and d[first], d[last] are its first and last nonzero digits.
type decimal struct {
	neg         bool
	intp, frac  []byte // the digits before and after the decimal point
	first, last int    // first is -1 for zero
	point       int
}

// maxFastExp bounds the exponents and fraction lengths the fast path reads. big.Rat (which the
// generic validator uses) refuses numbers whose power of ten passes 10^6; such numbers are left to it.
const maxFastExp = 100_000

// parseDecimal reads lit, a literal the scanner accepted. ok is false for numbers beyond maxFastExp.
func parseDecimal(lit []byte) (d decimal, ok bool) {
	i := 0
	if lit[0] == '-' {
		d.neg = true
		i++
	}
	j := skipDigits(lit, i)
	d.intp = lit[i:j]
	i = j
	if i < len(lit) && lit[i] == '.' {
		j = skipDigits(lit, i+1)
		d.frac = lit[i+1 : j]
		i = j
	}
	exp := 0
	if i < len(lit) { // e or E
		i++
		neg := false
		if lit[i] == '+' || lit[i] == '-' {
			neg = lit[i] == '-'
			i++
		}
		for ; i < len(lit); i++ {
			exp = exp*10 + int(lit[i]-'0')
			if exp > maxFastExp {
				return d, false
			}
		}
		if neg {
			exp = -exp
		}
	}
	if len(d.frac) > maxFastExp {
		return d, false
	}
	n := len(d.intp) + len(d.frac)
	d.first = -1
	for k := range n {
		if d.digit(k) != '0' {
			d.first = k
			break
		}
	}
	if d.first < 0 {
		return d, true
	}
	d.last = n - 1
	for d.digit(d.last) == '0' {
		d.last--
	}
	d.point = len(d.intp) - d.first + exp
	return d, true
}

// digit returns the k-th digit of intp+frac.
func (d *decimal) digit(k int) byte {
	if k < len(d.intp) {
		return d.intp[k]
	}
	return d.frac[k-len(d.intp)]
}

// isInteger reports whether d has no fractional part.
func (d *decimal) isInteger() bool {
	return d.first < 0 || d.last-d.first+1 <= d.point
}

func (d *decimal) sign() int {
	switch {
	case d.first < 0:
		return 0
	case d.neg:
		return -1
	}
	return 1
}

// cmpDecimal returns -1, 0 or +1 as a is less than, equal to or greater than b.
func cmpDecimal(a, b *decimal) int {
	sa, sb := a.sign(), b.sign()
	switch {
	case sa < sb:
		return -1
	case sa > sb:
		return 1
	case sa == 0:
		return 0
	}
	return sa * cmpMagnitude(a, b)
}

// cmpMagnitude compares |a| and |b|, both nonzero.
func cmpMagnitude(a, b *decimal) int {
	if a.point != b.point {
		if a.point < b.point {
			return -1
		}
		return 1
	}
	na, nb := a.last-a.first+1, b.last-b.first+1
	for k := range min(na, nb) {
		if da, db := a.digit(a.first+k), b.digit(b.first+k); da != db {
			if da < db {
				return -1
			}
			return 1
		}
	}
	switch {
	case na < nb:
		return -1
	case na > nb:
		return 1
	}
	return 0
}
