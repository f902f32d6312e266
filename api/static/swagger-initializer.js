// Starts Swagger UI on /api/v2 with the bridge's own OpenAPI document; nothing is fetched from
// outside this server (validatorUrl: null turns off the online validator badge).
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v2/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    oauth2RedirectUrl: window.location.origin + "/api/oauth2-callback",
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "BaseLayout"
  });
};
