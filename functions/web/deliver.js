// Result delivery, shared by connect.html and result.html (inlined into their script):
// the @alter-ai/connect v0.8 widget protocol.
function httpUrl(u) {
  try { var x = new URL(u); return x.protocol === "https:" || x.protocol === "http:"; } catch (e) { return false; }
}
// r = {ok, allowed_origin, return_url, grants, error: {error, error_description}}.
// Returns "popup" (posted to opener, closing), "redirect" (navigating to return_url) or "page" (caller shows result).
function deliver(r, popupOnly) {
  var err = r.error || {};
  var opener = null;
  try { if (window.opener && !window.opener.closed) { opener = window.opener; } } catch (e) { opener = null; }
  if (opener && typeof r.allowed_origin === "string" && r.allowed_origin) {
    var msg = r.ok
      ? { type: "alter_connect_success", grants: r.grants || [] }
      : { type: "alter_connect_error", error: err.error, error_description: err.error_description };
    try {
      opener.postMessage(msg, r.allowed_origin);
      setTimeout(function () { window.close(); }, 300);
      return "popup";
    } catch (e) { /* invalid origin: fall through */ }
  }
  if (popupOnly) { return "page"; }
  if (typeof r.return_url === "string" && httpUrl(r.return_url)) {
    var p = new URLSearchParams();
    var add = function (k, v) { if (v !== null && v !== undefined) { p.append(k, String(v)); } };
    if (r.ok) {
      var g = (r.grants && r.grants[0]) || {};
      add("alter_connect_success", "true");
      add("grant_id", g.grant_id);
      add("provider", g.provider);
      add("account_identifier", g.account_identifier);
      add("provider_name", g.provider_name);
      add("timestamp", g.timestamp);
      add("operation", g.operation);
      add("scopes", Array.isArray(g.scopes) ? g.scopes.join(",") : g.scopes);
      add("status", g.status);
      add("delegation_id", g.delegation_id);
      add("agent_id", g.agent_id);
      add("updated", g.updated);
      add("delegable", g.delegable);
    } else {
      add("alter_connect_error", err.error);
      add("error_code", err.error);
      add("error_description", err.error_description);
    }
    location.replace(r.return_url + (r.return_url.indexOf("?") !== -1 ? "&" : "?") + p.toString());
    return "redirect";
  }
  return "page";
}
