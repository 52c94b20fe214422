// Starts Swagger UI on the service's own OpenAPI document. Calls are tried against this same
// service; nothing is fetched from elsewhere (validatorUrl: null turns off the online badge).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: true,
    displayRequestDuration: true,
    supportedSubmitMethods: ["get"],
    validatorUrl: null,
    defaultModelsExpandDepth: 0,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
