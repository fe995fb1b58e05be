"""One paging rule for every list staff page through (clients, the dashboard's escalations, the
inbox): an empty list is one empty page, and a page number past the end shows the last page (a
link kept from when the list was longer still lands somewhere useful)."""


def page_count(total: int, size: int) -> int:
    """How many pages `total` rows make, `size` a page: at least one."""
    return max(1, -(-total // size))


def clamp(number: int, total: int, size: int) -> int:
    """The page to show for page `number`: from 1 up to the last page."""
    return min(max(number, 1), page_count(total, size))
