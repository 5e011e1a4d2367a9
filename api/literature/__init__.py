"""Literature import: references exported from PubMed or a reference manager, as studies in screening"""
