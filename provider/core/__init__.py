"""The pure core: decisions without asyncio, aiohttp or aiodocker."""
