"""The key a caller's budgets are counted under, from the address Lambda saw.

Only `requestContext.http.sourceIp` is used, never X-Forwarded-For or any other
header: the function URLs are public, so a client can always reach them
directly and write whatever it likes in a header.

An IPv4 address is one key. An IPv6 client usually holds a whole /64 or /56
(RFC 6177 suggests /56 for homes) and can pick a fresh address from it for
every request, so IPv6 addresses are keyed by their first `ipv6_prefix` bits
(56 by default, as express-rate-limit 8 does). An IPv4-mapped IPv6 address
(`::ffff:a.b.c.d`, what a dual-stack socket reports for an IPv4 peer) is the
IPv4 client it maps, so it shares that client's key.
"""

from __future__ import annotations

import ipaddress
import logging

# Every sourceIp that is not an IP address shares this one key: Lambda always
# reports an address, so this is a misconfiguration, and one shared budget means
# a malformed value can never mint a fresh budget (the raw text is never a key).
UNPARSED_KEY = "unparsed-source-ip"

_logger = logging.getLogger(__name__)


def client_key(source_ip: str, ipv6_prefix: int) -> str:
    """`203.0.113.7`, `2001:db8:1234:5600::/56` (for a /56), or UNPARSED_KEY for anything else."""
    if not 1 <= ipv6_prefix <= 128:
        raise ValueError(f"the IPv6 prefix length must be 1..128, not {ipv6_prefix}")
    try:
        address = ipaddress.ip_address(str(source_ip).strip())
    except ValueError:
        _logger.warning("sourceIp is not an IP address; it shares the key %r", UNPARSED_KEY)
        return UNPARSED_KEY
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    # From the integer, so a zone id (`fe80::1%eth0`) is dropped rather than kept in the key.
    return str(ipaddress.IPv6Network((int(address), ipv6_prefix), strict=False))
