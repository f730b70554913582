// Exact decimal numbers for the consumer example, on bigint: the value is
// `units / 10^scale`. The service sends every decimal as the canonical text
// of `jericommerce.loyalty.v1.Decimal` ("-12.5", never an exponent), and a
// JavaScript number would round anything past 2^53 or most fractions, so no
// number ever passes through one. (A team that already uses a decimal library
// such as decimal.js can parse the same text with it.)

export class Decimal {
  private constructor(
    readonly units: bigint,
    readonly scale: number,
  ) {}

  static readonly ZERO = new Decimal(0n, 0);

  // Parses "-123.4500": an optional "-", digits, an optional fraction.
  static parse(text: string): Decimal {
    const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
    if (!match) throw new Error(`not a decimal: ${JSON.stringify(text)}`);
    const [, sign, whole, fraction = ""] = match;
    const units = BigInt(`${whole}${fraction}`);
    return new Decimal(sign === "-" ? -units : units, fraction.length).normalized();
  }

  plus(other: Decimal): Decimal {
    const scale = Math.max(this.scale, other.scale);
    return new Decimal(this.rescaled(scale) + other.rescaled(scale), scale).normalized();
  }

  negated(): Decimal {
    return new Decimal(-this.units, this.scale);
  }

  sign(): number {
    return this.units > 0n ? 1 : this.units < 0n ? -1 : 0;
  }

  // Canonical text, the same as the service's: no trailing zeros in the
  // fraction, no fraction when it is zero, never "-0".
  toString(): string {
    const negative = this.units < 0n;
    const digits = (negative ? -this.units : this.units).toString().padStart(this.scale + 1, "0");
    const whole = digits.slice(0, digits.length - this.scale);
    const fraction = digits.slice(digits.length - this.scale);
    return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
  }

  private rescaled(scale: number): bigint {
    return this.units * 10n ** BigInt(scale - this.scale);
  }

  private normalized(): Decimal {
    let { units, scale } = this;
    while (scale > 0 && units % 10n === 0n) {
      units /= 10n;
      scale -= 1;
    }
    return units === this.units ? this : new Decimal(units, scale);
  }
}
