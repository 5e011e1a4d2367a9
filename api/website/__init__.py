"""The clinic's website kit: public position pages, the <treatment-status> widget, feed and sitemap"""
