package i18n

import "golang.org/x/text/language"

// translation is one language's texts, keyed by their English format.
type translation struct {
	tag   language.Tag
	texts map[string]string
}

// translations are the languages other than English. The Spanish follows
// the seed's own wording ("Conectado al chat", "Bienvenido {username}",
// "{username} se unió a la sala {room}"), which its users know.
var translations = []translation{{language.Spanish, spanish}}

var spanish = map[string]string{
	// Welcomes and announcements.
	"Connected to the chat": "Conectado al chat",
	"Welcome %s":            "Bienvenido %s",
	"%s joined the chat":    "%s se unió al chat",
	"%s left the chat":      "%s se desconectó",
	"%s joined room %s":     "%s se unió a la sala %s",
	"%s left room %s":       "%s salió de la sala %s",

	// Answers to the sender.
	"Private message sent to %s": "Mensaje privado enviado a %s",
	"User %s is not connected":   "Usuario %s no está conectado",
	"Message sent to everyone":   "Mensaje enviado a todos",
	"Message sent to room %s":    "Mensaje enviado a la sala %s",

	// Refused frames (the codes beside them are not translated).
	"message is empty":                                    "el mensaje está vacío",
	"message is %d bytes, over the limit of %d":           "el mensaje ocupa %d bytes y el límite es %d",
	"message is not valid UTF-8":                          "el mensaje no es UTF-8 válido",
	"unknown frame type":                                  "tipo de mensaje desconocido",
	"unknown frame type %.64q":                            "tipo de mensaje desconocido: %.64q",
	"frame is not valid JSON":                             "Formato de mensaje inválido: no es JSON válido",
	"frame must be a JSON object":                         "Formato de mensaje inválido: debe ser un objeto JSON",
	"field %q must be a JSON %s, not a JSON %s":           "el campo %q debe ser de tipo %s de JSON, no %s",
	"this connection is already authenticated":            "esta conexión ya está autenticada",
	"join room %q before sending to it":                   "únete a la sala %q antes de escribir en ella",
	"message not sent: the broker is unavailable":         "mensaje no enviado: el servicio de mensajería no está disponible",
	"already in room %q":                                  "ya estás en la sala %q",
	"a connection may join at most %d rooms":              "una conexión puede unirse como máximo a %d salas",
	"could not join room %q: the broker is unavailable":   "no se pudo entrar en la sala %q: el servicio de mensajería no está disponible",
	"not in room %q":                                      "no estás en la sala %q",
	"target_user is required":                             "falta target_user, el destinatario",
	"target_user is %d bytes, over the limit of %d":       "target_user ocupa %d bytes y el límite es %d",
	"private message not sent: the broker is unavailable": "mensaje privado no enviado: el servicio de mensajería no está disponible",

	// History (see server/hub/history.go).
	"history must not be negative":                        "history no puede ser negativo",
	"recover_private needs since":                         "recover_private necesita since",
	"recover_private needs since: {offset, epoch}":        "recover_private necesita since: {offset, epoch}",
	"could not read the inbox: the broker is unavailable": "no se pudo leer el buzón: el servicio de mensajería no está disponible",
	"limit must not be negative":                          "limit no puede ser negativo",

	// Limits (see server/hub/limits.go).
	"id is %d bytes, over the limit of %d":                    "el id ocupa %d bytes y el límite es %d",
	"too many joins: at most %g per second":                   "demasiadas entradas en salas: como máximo %g por segundo",
	"too many messages: at most %g per second":                "demasiados mensajes: como máximo %g por segundo",
	"too many messages from this user: at most %g per second": "demasiados mensajes de este usuario: como máximo %g por segundo",

	// Refusals by a namespace's policy (code forbidden; server/hub/access.go).
	"guests may not join room %q: log in first":        "los invitados no pueden entrar en la sala %q: inicia sesión primero",
	"room %q is private: your token does not grant it": "la sala %q es privada: tu token no te da acceso",
	"only admins may send to room %q":                  "solo los administradores pueden escribir en la sala %q",

	// Refreshes and moderation (see server/hub/expiry.go, moderation.go).
	"this server takes no tokens":                    "este servidor no admite tokens",
	"a guest session has no token to refresh":        "una sesión de invitado no tiene token que renovar",
	"refresh refused: %s":                            "renovación rechazada: %s",
	"refresh refused: the token is for another user": "renovación rechazada: el token es de otro usuario",
	"banned from room %q until %s":                   "tienes prohibida la sala %q hasta %s",
	"banned from room %q until %s: %s":               "tienes prohibida la sala %q hasta %s: %s",
	"user is required":                               "falta el usuario",
	"a ban must end in the future":                   "una prohibición debe terminar en el futuro",

	// A refresh whose token grants other rights (see server/hub/expiry.go).
	"refresh refused: the token's rights changed: reconnect": "renovación rechazada: los permisos del token han cambiado: vuelve a conectarte",

	// Room names (see server/hub/names.go).
	"room name is empty":                                             "el nombre de la sala está vacío",
	"room name %q is longer than %d characters":                      "el nombre de sala %q tiene más de %d caracteres",
	"room name %q starts or ends with a space":                       "el nombre de sala %q empieza o termina con un espacio",
	"room name %q has an empty part around ':'":                      "el nombre de sala %q tiene una parte vacía junto a ':'",
	"room name %q may hold only letters, digits, spaces and _ . - :": "el nombre de sala %q solo puede tener letras, números, espacios y _ . - :",

	// Pages of members (see server/hub/presence.go).
	"limit %d is negative": "el límite %d es negativo",
	"invalid cursor %q: pass the next_cursor of the previous page": "cursor %q inválido: usa el next_cursor de la página anterior",
}
