"""Report queries over the events store: date ranges, filters, and the reports themselves.

Nothing here builds SQL from user strings: dimensions and sort keys come from allow-lists, and
every user value travels as a server-side parameter (`{name:Type}`) through `SqlParams`.
"""
