// The API docs page shows no remote image: ReDoc 2 always draws its vendor's logo from the
// vendor's servers (no option turns it off), which the offline, strict-CSP page would block
// and report as a violation. Any image source on another origin becomes an empty local GIF.
// Loaded before ReDoc's bundle.
(function () {
  "use strict";
  var EMPTY = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";
  var local = function (value) {
    try {
      var url = new URL(String(value), window.location.href);
      var remote = (url.protocol === "http:" || url.protocol === "https:") && url.origin !== window.location.origin;
      return remote ? EMPTY : value;
    } catch (error) {
      return value;
    }
  };
  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    return setAttribute.call(this, name, name === "src" ? local(value) : value);
  };
  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) {
      src.set.call(this, local(value));
    },
  });
})();
