"""The platform's floor for bench/app.sh: a bare WebKitGTK window (the same GTK and WebKitGTK
libraries as the app, the same window size and rendering settings) showing a one-line page,
with no Rust, Tauri or Dropkey in it. Prints "first-paint" to stderr when the page has loaded,
as the app does, then idles until killed. Needs python3-gi and gir1.2-webkit2-4.1."""

import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import Gtk, WebKit2  # noqa: E402

window = Gtk.Window(title="WebKitGTK floor")
window.set_default_size(960, 680)  # tauri.conf.json's window
view = WebKit2.WebView()
window.add(view)


def loaded(_view, event):
    if event == WebKit2.LoadEvent.FINISHED:
        print("first-paint", file=sys.stderr, flush=True)


view.connect("load-changed", loaded)
view.load_html("<!doctype html><title>floor</title><p>blank</p>", "http://localhost/")
window.connect("destroy", Gtk.main_quit)
window.show_all()
Gtk.main()
