"""`openvle-pvesim` / `python -m openvle_pvesim` (placeholder until the simulator lands)."""


def main() -> int:
    print("openvle-pvesim: not implemented yet")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
