"""Which packets sent to a decoder never became pictures, and whether that was damage.

Used by media/decode.py's demux loop to tell a damaged frame that gave no picture from a decoder's
by-design drop (see :class:`PacketDamage`).
"""

from __future__ import annotations

import heapq


class PacketDamage:
    """Which packets never became pictures, and whether that was damage.

    Every packet sent with a pts is remembered until its picture comes out. Pictures leave the
    decoder in presentation order, so once a picture with pts P is out, a packet with a smaller
    pts that has not come out never will: it is missing. A missing picture counts as damage only
    with evidence: its packet was flagged corrupt by the demuxer, or the decoder raised an error
    not yet accounted for. (Under frame threading the error surfaces a packet or two after the
    one that caused it, which is why errors are matched to missing pts, not to the packet that
    was being sent.) Without evidence a missing picture is a decoder's by-design drop, such as the
    leading pictures of an open GOP after a seek, and is left alone.
    """

    #: Stop tracking when this many pts are pending and no picture brings a pts back.
    MAX_PENDING = 4096

    def __init__(self) -> None:
        self.sent: list[int] = []  # min-heap of pts sent to the decoder
        self.pending: dict[int, int] = {}  # pts -> sent but not yet out
        self.flagged: set[int] = set()  # pts of packets the demuxer flagged corrupt
        self.errors = 0  # decoder errors not yet matched to a missing picture

    def sent_packet(self, pts: int, corrupt: bool) -> None:
        if len(self.sent) >= self.MAX_PENDING:
            self.sent.clear()
            self.pending.clear()
        heapq.heappush(self.sent, pts)
        self.pending[pts] = self.pending.get(pts, 0) + 1
        if corrupt:
            self.flagged.add(pts)

    def arrived(self, pts: int) -> bool:
        """A picture with ``pts`` came out; True if its packet was flagged corrupt."""
        n = self.pending.get(pts, 0)
        if n > 1:
            self.pending[pts] = n - 1
        elif n == 1:
            del self.pending[pts]
        if pts in self.flagged:
            self.flagged.discard(pts)
            return True
        return False

    def missing_before(self, pts: int | None) -> list[int]:
        """Damaged pts before ``pts`` (all remaining when None) that will never be pictures."""
        out = []
        while self.sent and (pts is None or self.sent[0] < pts):
            m = heapq.heappop(self.sent)
            n = self.pending.get(m, 0)
            if n == 0:
                continue
            if n > 1:
                self.pending[m] = n - 1
            else:
                del self.pending[m]
            if m in self.flagged:
                self.flagged.discard(m)
                out.append(m)
            elif self.errors > 0:
                self.errors -= 1
                out.append(m)
        return out
