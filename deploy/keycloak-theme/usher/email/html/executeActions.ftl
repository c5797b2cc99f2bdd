<#-- Usher's password-setup mail (HTML part). Colours and logo: theme.properties; words:
     messages/messages_en.properties. Inline styles only: mail clients drop <style> and CSS
     files. Everything printed with ${} is HTML-escaped by Keycloak (HTML output format). -->
<#outputformat "plainText">
<#assign requiredActionsText><#if requiredActions??><#list requiredActions><#items as reqActionItem>${msg("requiredAction.${reqActionItem}")}<#sep>, </#sep></#items></#list></#if></#assign>
</#outputformat>
<#assign brand = (properties.brandColor)!"#2f5d8a">
<#assign brandText = (properties.brandTextColor)!"#ffffff">
<#assign lifetime = linkExpirationFormatter(linkExpiration)>
<html lang="${locale.language}" dir="${(ltr)?then('ltr','rtl')}">
<body style="margin:0;padding:0;background:#f4f6f8;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2933;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f6f8;">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px;background:#ffffff;border-top:6px solid ${brand};border-radius:6px;">
<tr><td style="padding:24px 32px 8px 32px;">
<#if (properties.logoUrl)?has_content>
<img src="${properties.logoUrl}" alt="${realmName}" height="40" style="display:block;height:40px;border:0;">
<#else>
<div style="font-size:20px;font-weight:bold;color:${brand};">${realmName}</div>
</#if>
</td></tr>
<tr><td style="padding:8px 32px 0 32px;font-size:16px;line-height:1.5;">
<h1 style="font-size:22px;margin:16px 0 8px 0;color:${brand};">${msg("usherWelcome", realmName)}</h1>
${kcSanitize(msg("executeActionsBodyHtml", link, linkExpiration, realmName, requiredActionsText, lifetime, (user.username)!""))?no_esc}
</td></tr>
<tr><td align="center" style="padding:16px 32px;">
<a href="${link}" style="display:inline-block;background:${brand};color:${brandText};font-size:16px;font-weight:bold;text-decoration:none;padding:12px 28px;border-radius:4px;">${msg("usherButton")}</a>
</td></tr>
<tr><td style="padding:0 32px 24px 32px;font-size:14px;line-height:1.5;color:#52606d;">
<p style="margin:0 0 12px 0;">${msg("usherLinkLifetime", lifetime)}</p>
<p style="margin:0 0 12px 0;">${msg("usherCopyLink")}<br><a href="${link}" style="color:${brand};word-break:break-all;">${link}</a></p>
<p style="margin:0;">${msg("usherIgnore")}</p>
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
