// Every request a page makes to Spoon goes through here: the session cookie
// plus the CSRF token (the cookie is HttpOnly; the page carries the token in
// a form field), and one way to read answers and failures.
export function csrfToken() {
  const field = document.querySelector("input[name=csrfmiddlewaretoken]");
  return field ? field.value : "";
}

// A request with a JSON body, or form fields when data is a URLSearchParams
// (the endpoints that read forms). A failure throws an Error carrying the
// answer's fields ({error, field}) and its HTTP status, so a form can point
// at the field at fault and a page can tell a session that ended.
export async function call(method, url, data) {
  const options = { method, headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin" };
  if (data instanceof URLSearchParams) {
    options.body = data;
  } else if (data !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(data);
  }
  const response = await fetch(url, options);
  const body = await readAnswer(response);
  if (!response.ok) {
    throw Object.assign(new Error(body.error || response.statusText), body, { status: response.status });
  }
  return body;
}

// JSON, or (a proxy's error page, a CSRF refusal) a sentence about the status.
async function readAnswer(response) {
  if (response.status === 204) return {};
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (error) {
    return response.ok ? {} : { error: `Spoon answered ${response.status} ${response.statusText}.` };
  }
}

// The WebSocket address of a path a ticket endpoint gave (its ws_url), on
// this page's host, encrypted when the page is.
export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}
