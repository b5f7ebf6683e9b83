# Sourced by the bench scripts: makes (once) the venv with P2PD 3.1.9 under $TARGET and,
# unless NO_P2PD is set, adds "p2pd" to the array IMPLS when it imports.
VENV="$TARGET/p2pd-bench-venv"
if [[ -z "${NO_P2PD:-}" ]]; then
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import p2pd" 2>/dev/null; then
        echo "making $VENV with p2pd 3.1.9 ..." >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet "p2pd==3.1.9" >&2 || true
    fi
    if "$VENV/bin/python" -c "import p2pd" 2>/dev/null; then
        IMPLS+=(p2pd)
    else
        echo "p2pd 3.1.9 is not installable here: measuring without it" >&2
    fi
fi
