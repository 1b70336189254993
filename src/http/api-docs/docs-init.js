// The interactive API reference (/api/docs): Swagger UI on /api/v1/openapi.json.
// A file of its own (no inline script), so the page's Content-Security-Policy
// allows scripts from this server only.
//
// The document needs a role (viewer), like every /api/v1 route. With a login
// session (the HttpOnly cookie, which the browser sends by itself) writes
// also need the session's CSRF token in x-csrf-token: GET /api/v1/auth/me
// (or the login) gives it, and requestInterceptor adds it to "Try it out"
// requests. With an API token instead, the interceptor sends it as
// "Authorization: Bearer", the document's request included; the token stays
// in this page's memory only.
/* global SwaggerUIBundle */
(function () {
  'use strict';

  var WRITE = /^(POST|PUT|PATCH|DELETE)$/i;
  var csrfToken = null;
  var bearer = null;

  var intro = document.getElementById('intro');
  var status = document.getElementById('status');
  var form = document.getElementById('login');

  function say(text) {
    status.textContent = text;
    status.hidden = text === '';
  }

  function messageOf(body, res) {
    return body && typeof body.message === 'string' ? body.message : 'HTTP ' + res.status;
  }

  function json(res) {
    return res.json().then(
      function (body) {
        return { res: res, body: body };
      },
      function () {
        return { res: res, body: null };
      },
    );
  }

  function request(method, url, body) {
    var headers = { accept: 'application/json' };
    if (bearer) headers.authorization = 'Bearer ' + bearer;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(url, { method: method, headers: headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) }).then(json);
  }

  function start() {
    // Swagger UI shows the document's own title.
    intro.hidden = true;
    window.ui = SwaggerUIBundle({
      url: '/api/v1/openapi.json',
      dom_id: '#swagger-ui',
      deepLinking: true,
      // Never send the document to validator.swagger.io.
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: 'BaseLayout',
      requestInterceptor: function (req) {
        if (bearer && !req.headers.Authorization && !req.headers.authorization) req.headers.Authorization = 'Bearer ' + bearer;
        if (csrfToken && WRITE.test(req.method || 'GET')) req.headers['x-csrf-token'] = csrfToken;
        return req;
      },
      responseInterceptor: function (res) {
        // A login tried from the reference itself makes a new session: use its token.
        var body = res.body || res.obj;
        if (res.ok && /\/api\/v1\/auth\/login$/.test(res.url || '') && body && typeof body.csrfToken === 'string') csrfToken = body.csrfToken;
        return res;
      },
    });
  }

  function askLogin(text) {
    intro.hidden = false;
    say(text);
    form.hidden = false;
    document.getElementById('login-name').focus();
  }

  function whoAmI() {
    return request('GET', '/api/v1/auth/me').then(function (r) {
      if (r.res.ok) {
        csrfToken = r.body && typeof r.body.csrfToken === 'string' ? r.body.csrfToken : null;
        start();
      } else if (r.res.status === 401) {
        // Not logged in: the form, with no message; a token that was refused: say why.
        var refused = bearer !== null;
        bearer = null;
        askLogin(refused ? messageOf(r.body, r.res) : '');
      } else {
        askLogin(messageOf(r.body, r.res));
      }
    });
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var name = form.elements.name.value;
    var password = form.elements.password.value;
    var token = form.elements.token.value.trim();
    form.elements.password.value = '';
    form.elements.token.value = '';
    if (token !== '') {
      bearer = token;
      whoAmI().catch(function (err) {
        askLogin(String(err));
      });
      return;
    }
    request('POST', '/api/v1/auth/login', { name: name, password: password })
      .then(function (r) {
        if (!r.res.ok) return askLogin(messageOf(r.body, r.res));
        if (r.body.user && r.body.user.mustChangePassword) return askLogin('This password was generated: choose your own first (fleetboot user passwd, or POST /api/v1/users/NAME/password).');
        csrfToken = r.body.csrfToken;
        start();
      })
      .catch(function (err) {
        askLogin(String(err));
      });
  });

  whoAmI().catch(function (err) {
    askLogin(String(err));
  });
})();
