"""``ssl-ws encoders``: list the encoders, their options and parameter counts."""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument("--layers", default="2,32,32,1",
                        help="INR layer sizes to count parameters for (default: 2,32,32,1)")
    parser.add_argument("--options", action="store_true", help="also print every encoder's options and defaults")


def run(args) -> int:
    from ..errors import SslWsError
    from ..models import describe_encoders, encoder_options
    from ..weights import INRSpec

    try:
        sizes = tuple(int(s) for s in str(args.layers).split(","))
    except ValueError:
        raise SslWsError(f"--layers must be comma-separated integers, got {args.layers!r}") from None
    spec = INRSpec(sizes)
    print(f"encoders for INRs {' -> '.join(map(str, sizes))} (default sizes):")
    rows = describe_encoders(spec)
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        inv = "invariant" if r["invariant"] else "NOT invariant"
        print(f"  {r['name']:<{width}}  {r['parameters']:>10,} params  out_dim {r['out_dim']:<4} {inv:<13}  {r['description']}")
        if args.options:
            opts = ", ".join(f"{k}={v!r}" for k, v in encoder_options(r["name"]).items())
            print(f"  {'':<{width}}  options: {opts}")
    return 0
