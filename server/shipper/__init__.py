"""The shipper: durable spool -> ClickHouse, at least once, without visible duplicates."""

from pixel.server.shipper.shipper import Shipper, ShipperStats

__all__ = ["Shipper", "ShipperStats"]
