"""One module per resource group; each resource parses, calls the domain service, renders."""
