"""One APIRouter per resource: health, quotes, price sheets, lint."""
