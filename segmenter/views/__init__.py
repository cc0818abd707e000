"""Ways to look at segments: the timeline strip, the HTML report and the web page."""
