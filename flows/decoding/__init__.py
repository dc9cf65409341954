"""Message body decoders: pure functions, bounded, that never raise.

`decode_message` (`message.py`) chooses the decoder by content type, content encoding and
shape; `decode_event` (`tap_event.py`) does it for a tap event. What they answer,
`Decoded` (`result.py`), is shown next to the raw body on the live page and sent as the
`decoded` field of `/ws/tap/`.

| module | reads |
|---|---|
| `compression.py` | gzip, zlib, deflate, bzip2, xz (`content_encoding`, kombu's `compression`) |
| `pickle_reader.py` | pickle, never unpickled: `pickletools` disassembly and a literal reading |
| `binary_formats.py` | msgpack, CBOR, YAML (with PyYAML's safe loader, when installed) |
| `protobuf_wire.py` | protobuf without a schema: fields, wire types, nested messages |
| `celery.py` | Celery task messages, protocol 1 and 2, in any of the above |
| `values.py`, `bounds.py` | decoded values as JSON data and as text; every bound |
"""

from flows.decoding.message import decode_message
from flows.decoding.result import CeleryTask, Decoded
from flows.decoding.tap_event import decode_event

__all__ = ["CeleryTask", "Decoded", "decode_event", "decode_message"]
