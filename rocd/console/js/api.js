// The HTTP API from the page: same origin, JSON bodies, the token (if any) as a bearer.
// Every failure is an ApiError whose message is the API's own `message`.

const TOKEN_KEY = "rocd.token";

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message);
    this.status = status; // 0: the daemon did not answer
    this.code = body.error;
    this.details = body.details || [];
  }
}

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** A path segment (a device id may hold any character, "/" included). */
export const seg = encodeURIComponent;

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, { error: "unreachable", message: `the daemon does not answer (${err.message})` });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const known = data && typeof data.message === "string";
    throw new ApiError(response.status, known ? data : {
      error: "http_error",
      message: `${response.status} ${response.statusText}`.trim(),
    });
  }
  return data;
}
