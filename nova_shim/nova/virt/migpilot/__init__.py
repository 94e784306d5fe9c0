"""migpilot's entry in nova.virt: nova Zed loads compute drivers only from this package."""
