"""The officials' web console, served by the gateway itself: one HTML page that is never
cached, and its static files under a content-derived version, cached for a year.

The console is one more client of the HTTP API (plain ES modules in ``static/``); this
package only serves those files and sets the browser security headers for every answer.
"""
