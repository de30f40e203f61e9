"""Make the working tree importable as ansible_collections.mqttaction.emqx."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".lab" / "collections"
link = COLLECTIONS / "ansible_collections" / "mqttaction" / "emqx"
if not link.exists():
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(ROOT)
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
