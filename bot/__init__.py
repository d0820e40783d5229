"""反诈联络员群助手: the liaison relay bot."""
