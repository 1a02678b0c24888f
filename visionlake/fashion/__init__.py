"""Fashion: garment tags (zero-shot and trained heads), model-free colours, regions and look search."""
