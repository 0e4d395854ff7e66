"""Every word the bot says in French: outcomes by MailPartner answer (answers.py's keys), then the rest."""

from __future__ import annotations

from bot.mailpartner.answers import UNKNOWN_CODE, FailureKind

_RETRY_SAFE = (
    "Vous pouvez redemander sans risque : si la première demande est passée, MailPartner répondra que l'envoi est "
    "déjà annulé."
)

# What happened to the mail, and what to do next: (what, next step).
OUTCOMES: dict[int | FailureKind | str, tuple[str, str]] = {
    200: (
        "L'envoi du mail `{id}` est annulé : il ne partira pas.",
        "",
    ),
    5: (
        "L'envoi du mail `{id}` était déjà annulé : il ne partira pas.",
        "",
    ),
    4: (
        "Le mail `{id}` est introuvable chez MailPartner ; rien n'a été annulé.",
        "Vérifiez l'identifiant : c'est le `messageId` renvoyé par MailPartner lors de la programmation.",
    ),
    6: (
        "Trop tard : le mail `{id}` part dans moins de 5 minutes et ne peut plus être annulé.",
        "Le mail sera envoyé. Prévenez les personnes concernées ou préparez un correctif.",
    ),
    7: (
        "Le mail `{id}` est déjà parti ; il ne peut plus être annulé.",
        "Préparez un correctif si nécessaire.",
    ),
    10: (
        "MailPartner a refusé la clé API du bot ; le mail `{id}` n'a pas été annulé.",
        "Un administrateur doit corriger `MAILPARTNER_API_KEY`, puis redemandez.",
    ),
    1: (
        "MailPartner indique que la clé API manque ; le mail `{id}` n'a pas été annulé.",
        "Un administrateur doit renseigner `MAILPARTNER_API_KEY`, puis redemandez.",
    ),
    3: (
        "MailPartner indique que l'identifiant du mail manque ; le mail `{id}` n'a pas été annulé.",
        "C'est un bogue du bot : signalez-le, et annulez depuis le site de MailPartner en attendant.",
    ),
    UNKNOWN_CODE: (
        "MailPartner a répondu par un code inattendu {code} pour le mail `{id}` : « {mp_message} ».",
        "L'envoi n'est probablement pas annulé : vérifiez sur le site de MailPartner.",
    ),
    FailureKind.TIMEOUT: (
        "MailPartner n'a pas répondu à temps pour le mail `{id}` : le résultat est inconnu.",
        _RETRY_SAFE,
    ),
    FailureKind.CONNECTION: (
        "Impossible de joindre MailPartner pour le mail `{id}` ; il n'a pas été annulé.",
        "Réessayez dans une minute. Si cela persiste, vérifiez l'état de MailPartner.",
    ),
    FailureKind.NAME_UNRESOLVED: (
        "L'adresse de MailPartner ne se résout pas (DNS) pour le mail `{id}` ; il n'a pas été annulé.",
        "Vérifiez MAILPARTNER_BASE_URL et le DNS de cette machine (`python -m bot check`) ; réessayer n'y fera rien.",
    ),
    FailureKind.CERTIFICATE: (
        "Le certificat de MailPartner a été refusé pour le mail `{id}` ; il n'a pas été annulé.",
        "Vérifiez SSL_CERT_FILE (l'autorité d'un proxy ?) avec `python -m bot check` ; réessayer n'y fera rien.",
    ),
    FailureKind.HTTP_ERROR: (
        "MailPartner a échoué (HTTP {status}) pour le mail `{id}` ; il n'a probablement pas été annulé.",
        _RETRY_SAFE,
    ),
    FailureKind.MALFORMED: (
        "MailPartner a envoyé une réponse illisible (HTTP {status}) pour le mail `{id}` : le résultat est inconnu.",
        _RETRY_SAFE,
    ),
}

UI: dict[str, str] = {
    "sandbox_mark": "[BAC À SABLE]",
    "sandbox": ":test_tube: *BAC À SABLE* — aucun vrai mail n'est touché.",
    "prompt": "Annuler l'envoi programmé du mail {ids} chez MailPartner ? C'est irréversible.",
    "prompt_many": "Annuler l'envoi programmé des mails {ids} chez MailPartner ? C'est irréversible.",
    "prompt_second": "<@{requester}> demande l'annulation du mail {ids} chez MailPartner. *Une deuxième personne* "
    "autorisée doit confirmer.",
    "prompt_second_many": "<@{requester}> demande l'annulation des mails {ids} chez MailPartner. *Une deuxième "
    "personne* autorisée doit confirmer.",
    "prompt_workflow": "<@{requester}> demande, par un workflow, l'annulation du mail {ids} chez MailPartner. C'est "
    "irréversible.",
    "prompt_workflow_many": "<@{requester}> demande, par un workflow, l'annulation des mails {ids} chez "
    "MailPartner. C'est irréversible.",
    "prompt_expiry": "Demandé par <@{requester}> · expire dans {minutes} min",
    "reason": "*Motif :* {reason}",
    "confirm": "Annuler l'envoi",
    "confirm_many": "Annuler {n} mails",
    "keep": "Le garder",
    "confirmed": ":ballot_box_with_check: <@{user}> a confirmé l'annulation de {ids} ; le résultat suit plus bas.",
    "kept": ":ok_hand: <@{user}> a gardé {ids} ; rien n'a été annulé.",
    "expired": ":stopwatch: Cette demande a expiré avant d'être confirmée ; rien n'a été annulé. Redemandez avec "
    "`/cancel-mail {ids_plain}`.",
    "by": "Confirmé par <@{confirmer}>",
    "requested": "demandé par <@{requester}>",
    "mp_said": "MailPartner : « {mp_message} »",
    "on_retry": "confirmé par une nouvelle tentative après le silence de MailPartner",
    "recovered": ":recycle: Repris après une interruption : le bot a redémarré pendant l'annulation et a redemandé "
    "à MailPartner",
    "summary": "Résultat de l'annulation de {n} mails :",
    "totals": "*Total :* {cancelled} annulés · {too_late} trop tard · {already_sent} déjà partis · {not_found} "
    "introuvables · {failed} en échec",
    "usage": "Usage : `/cancel-mail <id>` (jusqu'à {max} identifiants séparés par des espaces ; `COMPTE:ID`, "
    "comme `brand-b:301`, nomme le compte MailPartner ; puis ` -- motif` pour dire pourquoi), ou mentionnez-moi "
    "dans un fil : `@{bot} cancel <id> -- motif`. `/cancel-mail history` montre ce qui s'est passé dans cette "
    "conversation, `/cancel-mail history <id>` tout ce qui concerne un mail. Un identifiant compte "
    "1 à 64 lettres, chiffres, `-` ou `_`, sans `-` en tête : le `messageId` renvoyé par MailPartner à la "
    "programmation. Le motif compte {max_reason} caractères au plus. Une confirmation vous sera demandée.",
    "unknown_account": "`{account}` n'est pas un des comptes MailPartner du bot ({accounts}) ; rien n'a été "
    "demandé. Nommez le compte devant l'identifiant, comme `{example}`.",
    "account_needed": "À qui est le mail `{offending}` ? Plusieurs comptes MailPartner connaissent cet "
    "identifiant, ou aucun ; rien n'a été demandé. Nommez le compte devant l'identifiant, comme `{example}` "
    "(comptes : {accounts}).",
    "looking_up": ":mag: Je regarde {ids} chez MailPartner avant votre confirmation…",
    "preview_recipients": "{ids} : {total} destinataires ; rien n'est encore délivré.",
    "preview_partly": "{ids} : {total} destinataires ; déjà délivré à {delivered} d'entre eux.",
    "preview_gone": ":outbox_tray: {ids} est parti : délivré aux {total} destinataires ; il ne peut plus être annulé.",
    "preview_empty": "{ids} : MailPartner ne lui connaît encore aucun destinataire.",
    "preview_no_report": "{ids} : MailPartner n'a pas encore de rapport de livraison ; normal pour un mail pas "
    "encore envoyé ; vérifiez l'identifiant.",
    "preview_silent": "{ids} : MailPartner n'a pas dit à temps de quoi il s'agit ; vérifiez l'identifiant.",
    "preview_unreachable": "{ids} : MailPartner n'a pas pu être joint pour dire de quoi il s'agit.",
    "preview_name_unresolved": "{ids} : l'adresse de MailPartner ne se résout pas (DNS) : vérifiez "
    "MAILPARTNER_BASE_URL.",
    "preview_certificate_refused": "{ids} : le certificat de MailPartner a été refusé : vérifiez SSL_CERT_FILE.",
    "preview_refused": "{ids} : MailPartner a refusé la clé du compte (code {code}) ; l'annulation échouera "
    "sans doute aussi.",
    "preview_odd": "{ids} : MailPartner a répondu le code {code} à son sujet.",
    "preview_total": "*{total} destinataires en tout.*",
    "preview_to": "À {addresses}{more}.",
    "preview_more": " et {n} autres",
    "preview_cancelled": ":no_entry_sign: {ids} est déjà annulé : il ne partira pas.",
    "nothing_to_cancel": ":outbox_tray: Plus rien à annuler : {ids} est déjà parti chez tous ses destinataires.",
    "nothing_to_cancel_cancelled": ":no_entry_sign: Plus rien à annuler : {ids} est déjà annulé et ne partira pas.",
    "more_help": "La suite : `/cancel-mail aide`.",
    "dm_more_help": "Écrivez `aide` pour la suite.",
    "bad_id": "`{offending}` n'est pas un identifiant de mail valide.",
    "id_too_long": "`{offending}` est trop long pour un identifiant de mail : {limit} caractères au plus, nom "
    "du compte compris.",
    "no_id": "Quel mail ? Donnez son identifiant.",
    "too_many": "{offending} identifiants, c'est trop à la fois.",
    "unknown_verb": "Je ne connais pas `{offending}`.",
    "verb_missing": "Dites `cancel` avant les identifiants : `@{bot} cancel {offending}`.",
    "reason_unmarked": "Des mots qui ne sont pas des identifiants suivent les identifiants. Si c'est le motif, "
    "mettez ` -- ` devant : `{offending}`.",
    "not_id_like": "`{offending}` ne ressemble pas à des identifiants de mail (ils ont des chiffres, comme `302`). "
    "Le motif a son propre champ.",
    "reason_required": "Dites pourquoi : un motif est exigé ici, après ` -- `.",
    "reason_too_long": "Le motif compte {offending} caractères ; {max_reason} au plus.",
    "too_long": "Ces identifiants et ce motif ne tiennent pas dans une demande ; envoyez moins d'identifiants ou un "
    "motif plus court.",
    "history_args": "L'historique prend un identifiant au plus : `/cancel-mail history` ou `/cancel-mail history 300`.",
    "not_allowed_user": ":no_entry: Vous n'êtes pas autorisé à annuler des mails avec ce bot ; rien n'a été fait. "
    "Demandez à une personne d'astreinte.",
    "groups_unread": ":hourglass: Slack n'a pas encore dit qui fait partie des groupes autorisés à annuler : je ne "
    "peux pas savoir si vous en êtes ; rien n'a été fait. Réessayez dans une minute.",
    "not_allowed_channel": ":no_entry: Impossible d'annuler des mails depuis ce canal ; rien n'a été fait. Utilisez "
    "un canal d'astreinte.",
    "own_request": ":busts_in_silhouette: Une deuxième personne doit confirmer votre propre demande ; vous pouvez "
    "encore la retirer avec « Le garder ».",
    "private_conversation": ":busts_in_silhouette: Une deuxième personne doit confirmer chaque annulation, et "
    "personne d'autre ne voit cette conversation : demandez dans un canal d'astreinte, avec "
    "`/cancel-mail {ids_plain}` ou une mention. Rien n'a été fait.",
    "dm_usage": "Écrivez-moi ici : `cancel <id> [<id> …] -- motif` pour annuler des mails programmés (vous "
    "confirmez d'abord avec un bouton), `history <id>` pour ce qui est arrivé à un mail, `help` pour ceci. "
    "`COMPTE:ID`, comme `brand-b:301`, nomme le compte MailPartner.",
    "home_title": "Annuler des mails programmés",
    "home_intro": "J'annule un mail programmé chez MailPartner avant son envoi, après confirmation, et je dis au "
    "canal ce qui s'est passé. Demandez avec `/cancel-mail <id>`, une mention, le bouton ci-dessous ou un message "
    "direct ici.",
    "home_sandbox": ":test_tube: *BAC À SABLE* : ce bot travaille sur le simulateur MailPartner intégré ; aucun "
    "vrai mail n'est touché.",
    "home_access_unread": ":hourglass: Slack n'a pas encore dit qui fait partie des groupes autorisés à annuler ; "
    "cet onglet dira si vous pouvez le faire dès qu'il l'aura dit.",
    "home_may": ":white_check_mark: Vous pouvez annuler des mails programmés avec ce bot.",
    "home_may_channels": ":white_check_mark: Vous pouvez annuler des mails programmés avec ce bot, dans {channels}.",
    "home_may_not": ":no_entry: Vous ne pouvez pas annuler de mails avec ce bot : {rule}. Demandez à l'une de ces "
    "personnes, ou à qui administre le bot, de le faire ou de vous ajouter.",
    "home_rule_users": "seules {people} le peuvent",
    "home_rule_groups": "seuls les membres de {groups} le peuvent",
    "home_rule_both": "seules {people} et les membres de {groups} le peuvent",
    "home_open_form": "Annuler un mail programmé",
    "home_under_way": "*En cours :* {ids}",
    "home_recent": "*Vos demandes et confirmations récentes*, les plus récentes d'abord :",
    "home_recent_none": "Vous n'avez encore demandé ni confirmé aucune annulation.",
    "home_recent_more": "Vos {limit} plus récentes. Toute l'histoire d'un mail : `/cancel-mail history <id>`.",
    "home_history_unavailable": ":warning: Votre historique est indisponible : la base de données du bot ne "
    "répond pas. Les annulations fonctionnent toujours.",
    "home_accounts": "*Comptes MailPartner*",
    "home_account_ok": ":white_check_mark: `{account}` : clé acceptée (@{user}), {credits} crédits mail",
    "home_account_ok_no_credits": ":white_check_mark: `{account}` : clé acceptée (@{user})",
    "home_account_refused": ":closed_lock_with_key: `{account}` : MailPartner refuse la clé (code {code}) : les "
    "annulations y échoueront tant qu'un administrateur ne l'aura pas corrigée",
    "home_account_silent": ":hourglass: `{account}` : MailPartner n'a pas répondu à l'instant",
    "home_account_odd": ":warning: `{account}` : MailPartner a répondu le code {code}",
    "home_account_checking": ":mag: `{account}` : vérification…",
    "home_problem_accounts": ":warning: *Un compte MailPartner ne fonctionne pas :* {accounts}. Les annulations "
    "y échouent tant que sa clé n'est pas corrigée.",
    "home_problem_store": ":warning: *La base de données du bot ne répond pas.* Les annulations fonctionnent "
    "toujours ; l'historique est indisponible.",
    "in_flight": ":hourglass_flowing_sand: L'annulation de {ids} est déjà en cours, confirmée par <@{user}> ; le "
    "résultat sera publié ici.",
    "busy": ":hourglass_flowing_sand: Le bot annule {count} mails en ce moment, le plus qu'il prend à la fois : "
    "rien n'a été fait. Réessayez dans une minute.",
    "shutting_down": ":construction: Le bot redémarre et ne prend pas de nouvelle annulation ; rien n'a été fait. "
    "Redemandez dans une minute.",
    "error": ":warning: Un problème est survenu côté bot ; rien n'a été annulé. Redemandez, et prévenez un "
    "administrateur si cela persiste.",
    "crashed": ":warning: Le bot a échoué en annulant {ids} : MailPartner l'a peut-être annulé, ou non. "
    "`/cancel-mail history {ids_plain}` montre ce qui est consigné ; redemander est sans risque (une "
    "annulation déjà faite répond « déjà annulé »).",
    "audit_copy": "{user} a confirmé une annulation dans {channel}{link} :\n{lines}",
    "stale": ":stopwatch: Ce bouton ne fonctionne plus ; rien n'a été fait. Redemandez.",
    "history_mail": "*Historique du mail `{mail}`*, du plus récent au plus ancien :",
    "history_here": "*Historique des annulations dans cette conversation*, du plus récent au plus ancien :",
    "history_none_mail": "Rien n'est enregistré pour le mail `{mail}`.",
    "history_none_here": "Rien n'est encore enregistré dans cette conversation.",
    "history_mine": "*Votre historique d'annulations*, de toutes les conversations, du plus récent au plus ancien :",
    "history_none_mine": "Vous n'avez encore demandé ni confirmé aucune annulation.",
    "history_more": "Les {limit} plus récents seulement ; il y en a d'autres. Ceux d'un mail : `/cancel-mail "
    "history <id>` ; tous, là où tourne le bot : `python -m bot history --limit 200` (ou `--since 7d`).",
    "history_unavailable": ":warning: L'historique est indisponible : la base de données du bot ne répond pas. Les "
    "annulations fonctionnent toujours, et le journal garde chaque action.",
    "h_request": "{actor} a demandé l'annulation de {ids} ({via})",
    "h_refusal": "{actor} a été refusé ({refusal}) pour {ids}",
    "h_confirm": "{actor} a confirmé l'annulation de {ids}",
    "h_keep": "{actor} a gardé {ids}",
    "h_expiry": "{actor} a confirmé {ids} après l'expiration ; rien n'a été annulé",
    "h_busy": "{actor} a confirmé {ids} alors que le bot annulait le plus qu'il prend à la fois : rien n'a été fait",
    "h_unrecorded": "la base ne répondait pas : les autres réplicas ne voyaient pas cette annulation",
    "h_duplicate": "{actor} a confirmé {ids} pendant une annulation en cours",
    "h_post_failed": "le résultat pour {ids} n'a pas pu être publié dans Slack",
    "h_recovery": "le bot a repris l'annulation de {ids} confirmée par {actor}, après une interruption",
    "h_step_end": "une exécution de workflow s'est terminée : `{result}`",
    "h_dm": "message direct",
    "h_sandbox": ":test_tube: *BAC À SABLE*",
    "via_command": "commande",
    "via_mention": "mention",
    "via_shortcut": "formulaire",
    "via_workflow": "workflow",
    "via_dm": "message direct",
    "via_cli": "ligne de commande",
    "refusal_not_allowed_user": "absent de la liste des personnes autorisées",
    "refusal_groups_unread": "groupes d'utilisateurs pas encore lus depuis Slack",
    "refusal_not_allowed_channel": "canal non autorisé pour les annulations",
    "refusal_own_request": "sa propre demande",
    "refusal_private_conversation": "message direct sous la règle des deux personnes",
    "h_reason": "motif : « {reason} »",
    "form_title": "Annuler un envoi",
    "form_submit": "Demander",
    "form_close": "Fermer",
    "form_ids": "Identifiants des mails",
    "form_ids_placeholder": "300 301",
    "form_ids_hint": "Le messageId de chaque mail, séparés par des espaces, des virgules ou des retours à la ligne "
    "; {max} au plus.",
    "form_reason": "Motif",
    "form_reason_placeholder": "Pourquoi ces mails ne doivent pas partir",
    "form_conversation": "Publier la confirmation dans",
    "form_note": "Rien n'est encore annulé : vous (ou une deuxième personne) confirmez d'abord avec un bouton.",
    "pick_conversation": "Choisissez la conversation où publier la confirmation.",
    "prompt_undelivered": ":warning: Impossible de publier la confirmation dans <#{channel}> ; rien n'a été annulé. "
    "Invitez-moi (`/invite @cancel-mail`) ou utilisez `/cancel-mail` dans ce canal.",
    "step_failed": "Le bot a échoué au démarrage de cette étape ; rien n'a été annulé. Relancez le workflow, et "
    "prévenez un administrateur si cela persiste.",
}
