package main

// Exact decimal numbers on math/big: the value is units / 10^scale. The
// service sends every decimal as the canonical text of
// jericommerce.loyalty.v1.Decimal ("-12.5", never an exponent); a float64
// would round anything past 2^53 and most fractions, so none is used.

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

type decimal struct {
	units *big.Int
	scale int
}

var (
	decimalText = regexp.MustCompile(`^(-?)(\d+)(?:\.(\d+))?$`)
	ten         = big.NewInt(10)
)

func zero() decimal { return decimal{units: new(big.Int)} }

// parseDecimal reads "-123.4500": an optional "-", digits, an optional fraction.
func parseDecimal(text string) (decimal, error) {
	m := decimalText.FindStringSubmatch(text)
	if m == nil {
		return decimal{}, fmt.Errorf("not a decimal: %q", text)
	}
	units, _ := new(big.Int).SetString(m[2]+m[3], 10)
	if m[1] == "-" {
		units.Neg(units)
	}
	return decimal{units, len(m[3])}.normalized(), nil
}

func (d decimal) rescaled(scale int) *big.Int {
	factor := new(big.Int).Exp(ten, big.NewInt(int64(scale-d.scale)), nil)
	return factor.Mul(factor, d.units)
}

func (d decimal) plus(o decimal) decimal {
	scale := d.scale
	if o.scale > scale {
		scale = o.scale
	}
	return decimal{new(big.Int).Add(d.rescaled(scale), o.rescaled(scale)), scale}.normalized()
}

func (d decimal) negated() decimal { return decimal{new(big.Int).Neg(d.units), d.scale} }

func (d decimal) sign() int { return d.units.Sign() }

func (d decimal) normalized() decimal {
	units, scale := new(big.Int).Set(d.units), d.scale
	q, r := new(big.Int), new(big.Int)
	for scale > 0 {
		q.QuoRem(units, ten, r)
		if r.Sign() != 0 {
			break
		}
		units.Set(q)
		scale--
	}
	return decimal{units, scale}
}

// String is the canonical text, the same as the service's: no trailing zeros
// in the fraction, no fraction when it is zero, never "-0".
func (d decimal) String() string {
	digits := new(big.Int).Abs(d.units).String()
	if len(digits) <= d.scale {
		digits = strings.Repeat("0", d.scale-len(digits)+1) + digits
	}
	whole, fraction := digits[:len(digits)-d.scale], digits[len(digits)-d.scale:]
	sign := ""
	if d.units.Sign() < 0 {
		sign = "-"
	}
	if fraction == "" {
		return sign + whole
	}
	return sign + whole + "." + fraction
}
