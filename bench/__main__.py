"""`python -m bench intake|store|scrub|prompts|memory|policy|rights|program|all [options]`: one JSON
line per result."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench import common


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "what",
        choices=[
            "intake",
            "store",
            "scrub",
            "prompts",
            "memory",
            "policy",
            "rights",
            "program",
            "all",
        ],
    )
    parser.add_argument(
        "--participants", type=int, default=100_000, help="prompts: participants to prompt"
    )
    parser.add_argument("--letters", type=int, default=2000, help="intake: letters per round")
    parser.add_argument("--rounds", type=int, default=3, help="intake: alternating rounds")
    parser.add_argument("--no-postfix", action="store_true", help="intake: skip Postfix")
    parser.add_argument(
        "--workers",
        default="0,-1",
        help="intake: relay layouts to load, comma-separated: 0 = serve alone; N = serve and N "
        "intake processes all accepting; -N = serve only holds, N intake processes accept",
    )
    parser.add_argument(
        "--sizes",
        default="1000,10000,100000",
        help="store, rights, program: participant counts, comma-separated",
    )
    parser.add_argument(
        "--match-sizes",
        default="30,100,300,600",
        help="program: participants of the larger library in one match, comma-separated",
    )
    parser.add_argument("--repeat", type=int, default=15, help="store/scrub: samples per figure")
    parser.add_argument(
        "--relay-root", type=Path, help="memory: the checkout whose relay package serve runs"
    )
    parser.add_argument("--results", type=Path, help="also write every result line here")
    parser.add_argument("--report", type=Path, help="write the Markdown tables (and charts) here")
    args = parser.parse_args(argv)
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])

    if args.what in ("intake", "all"):
        from bench import intake

        workers = tuple(int(n) for n in args.workers.split(","))
        intake.run(args.letters, args.rounds, postfix=not args.no_postfix, workers=workers)
    if args.what in ("store", "all"):
        from bench import store

        store.run([int(s) for s in args.sizes.split(",")], args.repeat)
    if args.what == "rights":  # not in "all": at the store's largest size it takes hours
        from bench import rights

        rights.run([int(s) for s in args.sizes.split(",")], args.repeat)
    if args.what in ("program", "all"):
        from bench import program

        program.run(
            [int(s) for s in args.sizes.split(",")], [int(s) for s in args.match_sizes.split(",")]
        )
    if args.what in ("prompts", "all"):
        from bench import prompts

        prompts.run(args.participants)
    if args.what in ("scrub", "all"):
        from bench import scrub

        scrub.run(args.repeat)
    if args.what in ("memory", "all"):
        from bench import memory

        memory.run(args.relay_root)
    if args.what in ("policy", "all"):
        from bench import policy

        policy.run()
    if args.results:
        args.results.write_text("".join(json.dumps(r) + "\n" for r in common.RESULTS))
    if args.report:
        from bench import report

        report.write(args.report, common.RESULTS, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
